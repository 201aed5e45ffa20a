/**
 * Publishes configuration bundles to an S3 + KMS emulator (moto: SIMULATED AWS) the way the stack does,
 * through the real AWS CLI: the manifest-signing key and its alias, every content-addressed file, each
 * manifest's signature (kms:Encrypt of the contract's plaintext under the contract's encryption context, as
 * `aws_kms_ciphertext` does at deploy), then the manifests. Used by the e2e rollout bed, the agent's fault
 * bed and the boot tests.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ConfigBundle } from "../../lib/node/bundle";
import { manifestKeyAlias, storeKeys } from "../../lib/contract/node-contract";

/** Runs the AWS CLI with `args` against the emulator; resolves with stdout, rejects on failure. */
export type AwsCli = (args: readonly string[]) => Promise<string>;

/** Creates the environment's manifest-signing key and its alias (as the stack's KmsKey and KmsAlias). */
export async function createSigningKey(aws: AwsCli, environment: string): Promise<string> {
  const key = JSON.parse(await aws(["kms", "create-key", "--description", `SIMULATED ${environment} manifests`])) as { KeyMetadata: { KeyId: string } };
  await aws(["kms", "create-alias", "--alias-name", manifestKeyAlias(environment), "--target-key-id", key.KeyMetadata.KeyId]);
  return key.KeyMetadata.KeyId;
}

/** What {@link signatureDocument} may be asked to do wrong, for the tests of the node's checks. */
export interface SignatureFault {
  /** Sign another manifest's digest (a signature that does not match). */
  readonly digest?: string;
  /** Encrypt under another encryption context (another node's). */
  readonly node?: string;
  /** Encrypt with another key (an attacker's). */
  readonly keyId?: string;
}

/** The signature object of `bundle` (`manifest.sig`), encrypted by the emulator's KMS. */
export async function signatureDocument(aws: AwsCli, environment: string, bundle: ConfigBundle, dir: string, fault: SignatureFault = {}): Promise<string> {
  const node = fault.node ?? bundle.node;
  const digest = fault.digest ?? bundle.manifestSha256;
  const plaintextFile = join(dir, `plaintext-${bundle.node}-${Date.now()}`);
  // The contract's plaintext with (possibly) another digest or node: rebuild it from the bundle's own.
  writeFileSync(plaintextFile, bundle.signature.plaintext.replace(bundle.manifestSha256, digest).replace(`/${bundle.node} `, `/${node} `));
  const context = { ...bundle.signature.context, "imaging-lb:node": node };
  const out = await aws([
    "kms", "encrypt",
    "--key-id", fault.keyId ?? manifestKeyAlias(environment),
    "--plaintext", `fileb://${plaintextFile}`,
    "--encryption-context", JSON.stringify(context),
    "--query", "CiphertextBlob", "--output", "text",
  ]);
  return `{"format":1,"manifestSha256":"${bundle.manifestSha256}","ciphertext":"${out.trim()}"}\n`;
}

/**
 * Uploads bundles: every file (one CLI call for all), each signature, then the manifests together (as
 * Terraform uploads them in parallel). Resolves with the time the manifest uploads began.
 */
export async function publishBundles(
  aws: AwsCli,
  options: { bucket: string; prefix: string; environment: string; staging: string; sign?: boolean },
  bundles: readonly ConfigBundle[],
): Promise<number> {
  const round = mkdtempSync(join(options.staging, "round-"));
  for (const bundle of bundles) {
    for (const file of bundle.files) {
      const key = storeKeys.file(options.prefix, bundle.node, file.sha256);
      mkdirSync(join(round, dirname(key)), { recursive: true });
      writeFileSync(join(round, key), file.content);
    }
  }
  await aws(["s3", "cp", "--recursive", "--only-show-errors", round, `s3://${options.bucket}/`]);
  if (options.sign !== false) {
    await Promise.all(
      bundles.map(async (bundle) => {
        const file = join(round, `signature-${bundle.node}.json`);
        writeFileSync(file, await signatureDocument(aws, options.environment, bundle, round));
        await aws(["s3api", "put-object", "--bucket", options.bucket, "--key", storeKeys.signature(options.prefix, bundle.node), "--body", file]);
      }),
    );
  }
  const manifestsAt = Date.now();
  await Promise.all(
    bundles.map((bundle) => {
      const manifest = join(round, `manifest-${bundle.node}.json`);
      writeFileSync(manifest, bundle.manifestText);
      return aws(["s3api", "put-object", "--bucket", options.bucket, "--key", storeKeys.manifest(options.prefix, bundle.node), "--body", manifest]);
    }),
  );
  return manifestsAt;
}

/** Puts raw bytes at `key` (a tampered manifest, a signature, a command). */
export async function putObject(aws: AwsCli, bucket: string, key: string, body: string | Buffer, dir: string): Promise<void> {
  const file = join(dir, `object-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, body);
  await aws(["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", file]);
}

/** Reads `key` (undefined when absent). */
export async function getObject(aws: AwsCli, bucket: string, key: string, dir: string): Promise<string | undefined> {
  const file = join(dir, `get-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  try {
    await aws(["s3api", "get-object", "--bucket", bucket, "--key", key, file]);
  } catch {
    return undefined;
  }
  return readFileSync(file, "utf8");
}
