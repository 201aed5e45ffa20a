/**
 * The configuration store: a per-environment bucket (versioned, encrypted, private, TLS-only, replaced
 * versions expired) or an adopted one; each node's bundle uploaded content-addressed with its manifest last;
 * the role reading the environment's bundles and writing only each node's own status.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { nodeBundle } from "../lib/bundle/config-bundle";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { environment, resolve } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PAIR_NODES = { "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" }, "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" } };
const KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

function synth(patch: Record<string, unknown> = {}): { json: Json; env: ReturnType<typeof resolve> } {
  const env = resolve(environment(patch));
  return { json: JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json, env };
}
const only = (json: Json, type: string): Json => {
  const all = Object.values(json.resource[type] ?? {}) as Json[];
  assert.equal(all.length, 1, `one ${type}`);
  return all[0];
};

describe("configuration store", () => {
  const { json, env } = synth({ loadBalancer: { nodes: PAIR_NODES } });

  it("a created bucket is named after the environment and account, versioned, AES256-encrypted, private and TLS-only", () => {
    assert.match(only(json, "aws_s3_bucket").bucket, /^imaging-lb-test-env-\$\{data\.aws_caller_identity\..*\.account_id\}$/);
    assert.equal(only(json, "aws_s3_bucket_versioning").versioning_configuration.status, "Enabled");
    assert.deepEqual(only(json, "aws_s3_bucket_server_side_encryption_configuration").rule[0].apply_server_side_encryption_by_default, { sse_algorithm: "AES256" });
    const block = only(json, "aws_s3_bucket_public_access_block");
    for (const k of ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]) assert.equal(block[k], true, k);
    const policy = JSON.parse(only(json, "aws_s3_bucket_policy").policy);
    assert.deepEqual(policy.Statement[0].Condition, { Bool: { "aws:SecureTransport": "false" } });
    assert.equal(policy.Statement[0].Effect, "Deny");
    const rule = only(json, "aws_s3_bucket_lifecycle_configuration").rule[0];
    assert.deepEqual(rule.noncurrent_version_expiration, [{ noncurrent_days: 30 }]);
  });

  it("uploads every node's files under their sha256 and the manifest after them; the instance waits for its manifest", () => {
    const objects = Object.entries(json.resource.aws_s3_object as Json);
    for (const node of env.nodes) {
      const bundle = nodeBundle(env, node.name);
      for (const file of bundle.files) {
        const found = objects.find(([, o]) => o.key === `test-env/nodes/${node.name}/files/${file.sha256}`);
        assert.ok(found, `${node.name} ${file.path}`);
        assert.equal(Buffer.from(found[1].content_base64, "base64").toString("utf8"), file.content);
      }
      const [manifestId, manifest] = objects.find(([, o]) => o.key === `test-env/nodes/${node.name}/manifest.json`)!;
      assert.equal(Buffer.from(manifest.content_base64, "base64").toString("utf8"), bundle.manifestText);
      assert.equal(manifest.depends_on.filter((d: string) => d.startsWith("aws_s3_object.")).length, bundle.files.length);
      const instance = Object.entries(json.resource.aws_instance as Json).find(([id]) => id.startsWith(`node-${node.name}_`))![1];
      assert.ok(instance.depends_on.includes(`aws_s3_object.${manifestId}`), "the first boot finds its bundle");
    }
  });

  it("the role reads the environment's bundles and status, and each node writes only its own status (from its eth0 address)", () => {
    const policy = Object.entries(json.resource.aws_iam_role_policy as Json).find(([id]) => id.includes("config-store"))![1];
    const statements = JSON.parse(policy.policy).Statement as Json[];
    const bucket = statements[0].Resource[0].replace(/\/test-env\/nodes\/\*$/, "");
    assert.deepEqual(statements[0], { Sid: "ReadBundlesAndStatus", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucket}/test-env/nodes/*`, `${bucket}/test-env/status/*`] });
    assert.deepEqual(statements.slice(1), [
      { Sid: "WriteStatuslba", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucket}/test-env/status/lb-a.json`], Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": "10.20.1.10" } } },
      { Sid: "WriteStatuslbb", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucket}/test-env/status/lb-b.json`], Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": "10.20.1.11" } } },
    ]);
    assert.equal(json.output.config_bucket.value, `\${${Object.keys(json.resource.aws_s3_bucket).map((id) => `aws_s3_bucket.${id}.bucket`)[0]}}`);
  });

  it("a customer KMS key encrypts the bucket and is granted through S3 only; an adopted bucket is used as it is", () => {
    const kms = synth({ configStore: { kmsKeyArn: KMS } }).json;
    assert.deepEqual(only(kms, "aws_s3_bucket_server_side_encryption_configuration").rule[0].apply_server_side_encryption_by_default, { sse_algorithm: "aws:kms", kms_master_key_id: KMS });
    const statements = JSON.parse((Object.entries(kms.resource.aws_iam_role_policy as Json).find(([id]) => id.includes("config-store"))![1] as Json).policy).Statement as Json[];
    assert.deepEqual(statements.at(-1), { Sid: "BucketKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: [KMS], Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } } });
    const adopted = synth({ configStore: { bucket: "hospital-lb-config" } }).json;
    assert.equal(adopted.resource.aws_s3_bucket, undefined);
    assert.ok((Object.values(adopted.resource.aws_s3_object) as Json[]).every((o) => o.bucket === "hospital-lb-config"));
  });
});
