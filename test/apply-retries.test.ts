/**
 * The apply suite's failure messages say which requests the AWS SDK sent twice (test/terraform-apply/
 * terraform.ts): the emulator refuses a create that reaches it twice as a duplicate, and only the
 * provider's debug log shows the retry and its reason. Here: the lines picked from a log in the provider's
 * format (copied from a real `TF_LOG_PROVIDER=DEBUG` apply against moto, values shortened), and the
 * wiring, with a stand-in `terraform` on PATH that writes such a log where it is told to and fails.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "./helpers/tools";
import { providerRetries, terraform } from "./terraform-apply/terraform";

const PREFIX = "2026-12-07T21:30:29.057Z [DEBUG] provider.terraform-provider-aws_v5.100.0_x5: ";
const FIRST = `${PREFIX}HTTP Request Sent: http.method=POST http.request.header.amz_sdk_request="attempt=1; max=25" rpc.method=CreateSubnet rpc.service=EC2`;
const AGAIN = `${PREFIX}HTTP Request Sent: http.method=POST http.request.header.amz_sdk_request="attempt=2; max=25" rpc.method=CreateSubnet rpc.service=EC2`;
const RETRYABLE = `${PREFIX}request failed with retryable error read tcp 127.0.0.1:51234->127.0.0.1:43875: read: connection reset by peer: rpc.method=CreateSubnet`;
const UNRETRYABLE = `${PREFIX}request failed with unretryable error https response error StatusCode: 404, api error NoSuchTagSet: rpc.method=GetBucketTagging`;
const SDK_V1 = "2026-12-07T21:30:30.000Z [DEBUG] provider.terraform-provider-aws_v5.100.0_x5: [aws-sdk-go] DEBUG: Retrying Request ec2/CreateTags, attempt 2";

describe("the apply suite names the requests the AWS SDK sent again", () => {
  it("picks second attempts, retryable failures and SDK v1 retries, without their prefix", () => {
    assert.deepEqual(providerRetries([FIRST, AGAIN, UNRETRYABLE, RETRYABLE, SDK_V1, ""].join("\n")), [
      AGAIN.slice(PREFIX.length),
      RETRYABLE.slice(PREFIX.length),
      "[aws-sdk-go] DEBUG: Retrying Request ec2/CreateTags, attempt 2",
    ]);
    assert.deepEqual(providerRetries([FIRST, UNRETRYABLE].join("\n")), []);
  });

  it("quotes them after a failed apply's stderr, says so when there were none, and deletes the log", async () => {
    const temp = tempDir("apply-retries");
    const dir = temp.path;
    const bin = join(dir, "bin");
    const stack = join(dir, "stack");
    for (const d of [bin, stack]) mkdirSync(d);
    // The stand-in writes the log named by TF_LOG_PATH (when TF_LOG_PROVIDER asks for it) and fails as terraform does.
    writeFileSync(
      join(bin, "terraform"),
      `#!/bin/sh\n[ "$TF_LOG_PROVIDER" = DEBUG ] && cat "$LOG_LINES" > "$TF_LOG_PATH"\necho "Error: creating EC2 Subnet: InvalidSubnet.Conflict" >&2\nexit 1\n`,
    );
    chmodSync(join(bin, "terraform"), 0o755);
    const lines = join(dir, "lines.log");
    const source = { cliConfigFile: join(dir, "terraform.rc") };
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
      writeFileSync(lines, [FIRST, AGAIN, RETRYABLE].join("\n"));
      const failed = await terraform(stack, ["apply", "-auto-approve"], source, { LOG_LINES: lines });
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /InvalidSubnet\.Conflict\n+requests the AWS SDK sent again \(provider debug log, 2 lines\):\n.*attempt=2; max=25.*\n.*connection reset by peer/);
      writeFileSync(lines, FIRST);
      const none = await terraform(stack, ["apply", "-auto-approve"], source, { LOG_LINES: lines });
      assert.match(none.stderr, /the AWS SDK sent no request twice \(provider debug log\)$/);
      const planned = await terraform(stack, ["plan"], source, { LOG_LINES: lines });
      assert.doesNotMatch(planned.stderr, /provider debug log/, "only an apply is logged");
      assert.deepEqual(readdirSync(stack), [], "the debug logs are deleted");
    } finally {
      process.env.PATH = saved;
      temp.cleanup();
    }
  });
});
