/**
 * AWS SDK errors of the commands that call AWS (`imaging-lb status`) in the user's words: what the
 * situation is (no credentials, a bucket that is not there, access refused), which bucket and account,
 * and what to do — not "internal error: <the SDK's message>". Pure: no AWS calls.
 */

/** A situation of the user's AWS setup, not a bug: the CLI prints the message and exits 1. */
export class AwsProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AwsProblem";
  }
}

/** The SDK's error name (`NoSuchBucket`, `CredentialsProviderError`, ...) and message. */
function describe(e: unknown): { name: string; message: string; code?: string } {
  const err = (e ?? {}) as { name?: unknown; message?: unknown; code?: unknown; Code?: unknown };
  return {
    name: typeof err.name === "string" ? err.name : "",
    message: typeof err.message === "string" ? err.message : String(e),
    code: typeof err.code === "string" ? err.code : typeof err.Code === "string" ? err.Code : undefined,
  };
}

/** The stack's own bucket name: `imaging-lb-<environment>-<account>` (lib/node/bundle.ts). */
const STACK_BUCKET = /^imaging-lb-(.+)-(\d{12})$/;

const CREDENTIALS_HELP =
  "provide them as for the AWS CLI: `aws sso login --profile <name>` and AWS_PROFILE=<name>, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or a role of the machine or pipeline";

const REFUSED_CREDENTIALS = new Set(["ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId", "TokenRefreshRequired"]);

const UNREACHABLE = new Set(["ENOTFOUND", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "TimeoutError"]);

/**
 * `e` as an {@link AwsProblem} when it is a situation of the user's AWS setup, else `e` itself (a bug,
 * reported as an internal error). `what` names the call ("reading s3://bucket/key", "asking STS for your
 * account"); `bucket` is the configuration bucket, when the call was to S3.
 */
export function awsProblem(e: unknown, what: string, bucket?: string): unknown {
  const { name, message, code } = describe(e);
  if (name === "CredentialsProviderError" || /Could not load credentials from any providers/.test(message)) {
    return new AwsProblem(`no AWS credentials found (${what}): ${CREDENTIALS_HELP}`);
  }
  if (REFUSED_CREDENTIALS.has(name)) {
    return new AwsProblem(`AWS refused your credentials (${name}: ${message}) when ${what}: they may have expired; renew them (e.g. \`aws sso login\`) or ${CREDENTIALS_HELP}`);
  }
  if (name === "NoSuchBucket" && bucket !== undefined) {
    const stack = STACK_BUCKET.exec(bucket);
    return new AwsProblem(
      stack
        ? `bucket ${bucket} does not exist: the stack ${stack[1]} may not be deployed yet (npx cdktf deploy ${stack[1]}), or it was deployed with another AWS account than the one of your credentials (${stack[2]}, the account in the bucket's name)`
        : `bucket ${bucket} (configStore.bucket) does not exist: create it, or correct configStore.bucket in the environment file`,
    );
  }
  if ((name === "AccessDenied" || name === "Forbidden") && bucket !== undefined) {
    const stack = STACK_BUCKET.exec(bucket);
    return new AwsProblem(
      `access denied when ${what}: your credentials${stack ? ` (account ${stack[2]})` : ""} may not read bucket ${bucket}; it may belong to another account, or your role lacks s3:GetObject on it`,
    );
  }
  if (UNREACHABLE.has(name) || (code !== undefined && UNREACHABLE.has(code))) {
    return new AwsProblem(`cannot reach AWS when ${what} (${code ?? name}: ${message}): check the network, a proxy (HTTPS_PROXY) or AWS_ENDPOINT_URL`);
  }
  return e;
}

/** What a status object that is not a JSON object says about its node, in place of the report it should be. */
export function unreadableStatus(bucket: string, key: string, why: string): string {
  return `s3://${bucket}/${key} is not a status report (${why}): the node's agent rewrites it at its next report; if it stays, read it with \`aws s3 cp s3://${bucket}/${key} -\``;
}
