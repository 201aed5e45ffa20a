/**
 * The configuration store: a per-environment bucket (versioned, encrypted, private, TLS-only, replaced
 * versions expired) or an adopted one; each node's bundle uploaded content-addressed with its manifest last;
 * the role reading the environment's bundles and writing only each node's own status.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { nodeBundle } from "../lib/node/bundle";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { join } from "node:path";
import { loadEnvironment } from "../lib/load/load";
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

  it("uploads every distinct file once under its sha256, then the manifest's signature, then the manifest; the instance waits for its manifest", () => {
    const objects = Object.entries(json.resource.aws_s3_object as Json);
    for (const node of env.nodes) {
      const bundle = nodeBundle(env, node.name);
      const shas = new Set(bundle.files.map((f) => f.sha256));
      for (const file of bundle.files) {
        const found = objects.filter(([, o]) => o.key === `test-env/nodes/${node.name}/files/${file.sha256}`);
        assert.equal(found.length, 1, `${node.name} ${file.path}: one object per content`);
        assert.equal(Buffer.from(found[0][1].content_base64, "base64").toString("utf8"), file.content);
      }
      const [manifestId, manifest] = objects.find(([, o]) => o.key === `test-env/nodes/${node.name}/manifest.json`)!;
      assert.equal(Buffer.from(manifest.content_base64, "base64").toString("utf8"), bundle.manifestText);
      const [signatureId, signature] = objects.find(([, o]) => o.key === `test-env/nodes/${node.name}/manifest.sig`)!;
      assert.ok(manifest.depends_on.includes(`aws_s3_object.${signatureId}`), "the signature is written before the manifest");
      assert.equal(manifest.depends_on.filter((d: string) => d.startsWith("aws_s3_object.")).length, shas.size + 1);
      const [cipherId, cipher] = Object.entries(json.resource.aws_kms_ciphertext as Json).find(([id]) => id.includes(`${node.name}-signature`))!;
      assert.equal(cipher.plaintext, bundle.signature.plaintext);
      assert.deepEqual(cipher.context, bundle.signature.context);
      assert.match(cipher.key_id, /^\$\{aws_kms_key\..*\.key_id\}$/);
      assert.equal(signature.content, `{"format":1,"manifestSha256":"${bundle.manifestSha256}","ciphertext":"\${aws_kms_ciphertext.${cipherId}.ciphertext_blob}"}\n`);
      const instance = Object.entries(json.resource.aws_instance as Json).find(([id]) => id.startsWith(`node-${node.name}_`))![1];
      assert.ok(instance.depends_on.includes(`aws_s3_object.${manifestId}`), "the first boot finds its bundle");
    }
  });

  it("the role reads the bundles, the status objects and its commands, writes only each node's own status (from its eth0 address), and may only decrypt manifest signatures", () => {
    const policy = Object.entries(json.resource.aws_iam_role_policy as Json).find(([id]) => id.includes("config-store"))![1];
    const statements = JSON.parse(policy.policy).Statement as Json[];
    const bucket = statements[0].Resource[0].replace(/\/test-env\/nodes\/\*$/, "");
    assert.deepEqual(statements[0], {
      Sid: "ReadBundlesStatusAndCommands",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [`${bucket}/test-env/nodes/*`, `${bucket}/test-env/status/*`, `${bucket}/test-env/commands/*`],
    });
    assert.deepEqual(statements.slice(1, 3), [
      { Sid: "WriteStatuslba", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucket}/test-env/status/lb-a.json`], Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": "10.20.1.10" } } },
      { Sid: "WriteStatuslbb", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucket}/test-env/status/lb-b.json`], Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": "10.20.1.11" } } },
    ]);
    const key = `\${${Object.keys(json.resource.aws_kms_key).filter((id) => id.startsWith("config-store_")).map((id) => `aws_kms_key.${id}.arn`)[0]}}`;
    assert.deepEqual(statements[3], {
      Sid: "VerifyManifestSignatures",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [key],
      Condition: { StringEquals: { "kms:EncryptionContext:imaging-lb:environment": "test-env", "kms:EncryptionContext:imaging-lb:purpose": "manifest" } },
    });
    assert.ok(!statements.some((st) => st.Action.some((a: string) => /Encrypt$|GenerateDataKey|Sign/.test(a) && st.Resource.includes(key))), "a node cannot sign");
    assert.equal(json.output.config_bucket.value, `\${${Object.keys(json.resource.aws_s3_bucket).map((id) => `aws_s3_bucket.${id}.bucket`)[0]}}`);
  });

  it("only the deploying principal (and configStore.writerArns) may publish bundles or commands and sign manifests; only the nodes report", () => {
    const writer = "arn:aws:iam::123456789012:role/pipeline-apply";
    const { json: j } = synth({ loadBalancer: { nodes: PAIR_NODES }, configStore: { writerArns: [writer] } });
    const deployer = `\${${Object.keys(j.data.aws_iam_session_context).map((id) => `data.aws_iam_session_context.${id}.issuer_arn`)[0]}}`;
    const session = Object.values(j.data.aws_iam_session_context)[0] as Json;
    assert.match(session.arn, /^\$\{data\.aws_caller_identity\..*\.arn\}$/, "the principal running terraform apply (its role, for an assumed role)");
    const policy = JSON.parse(only(j, "aws_s3_bucket_policy").policy);
    const statement = (sid: string) => policy.Statement.find((st: Json) => st.Sid === sid);
    assert.deepEqual(statement("OnlyDeployersPublish").Condition, { StringNotLike: { "aws:PrincipalArn": [deployer, writer] } });
    assert.equal(statement("OnlyDeployersPublish").Effect, "Deny");
    assert.ok(statement("OnlyDeployersPublish").Resource.every((r: string) => /\/test-env\/(nodes|commands)\/\*$/.test(r)));
    const role = `\${${Object.keys(j.resource.aws_iam_role).map((id) => `aws_iam_role.${id}.arn`)[0]}}`;
    assert.deepEqual(statement("OnlyNodesReport").Condition, { StringNotLike: { "aws:PrincipalArn": [role] } });
    const keys = Object.entries(j.resource.aws_kms_key as Json).filter(([id]) => id.startsWith("config-store_manifest-key"));
    assert.equal(keys.length, 1, "one manifest key (the other key is the alarm topic's)");
    const key = keys[0][1] as Json;
    assert.equal(key.enable_key_rotation, true);
    const keyPolicy = JSON.parse(key.policy);
    const deny = keyPolicy.Statement.find((st: Json) => st.Sid === "OnlyDeployersSign");
    assert.equal(deny.Effect, "Deny");
    assert.ok(deny.Action.includes("kms:Encrypt") && deny.Action.includes("kms:ReEncryptTo"));
    assert.deepEqual(deny.Condition, { StringNotLike: { "aws:PrincipalArn": [deployer, writer] } });
    const aliases = Object.values(j.resource.aws_kms_alias as Json).map((a) => (a as Json).name).sort();
    assert.deepEqual(aliases, ["alias/imaging-lb/test-env/alarms", "alias/imaging-lb/test-env/manifests"], "the manifest key's alias (the other is the alarm topic key's)");
    assert.ok(only(j, "aws_s3_bucket_policy"), "one bucket policy");
  });

  it("two files with the same content (two services' default maintenance pages) are one object: a change to one never deletes the other's", () => {
    const httpService = (port: number) => ({ frontendPorts: [port], mode: "http", backendPort: 8080, maintenance: { enabled: false } });
    const before = synth({ services: { app1: httpService(8081), app2: httpService(8082) } });
    const keysOf = (j: Json) => (Object.values(j.resource.aws_s3_object) as Json[]).map((o) => o.key as string);
    const duplicated = nodeBundle(before.env, "lb-a").files.filter((f) => f.path.endsWith("maintenance.html"));
    assert.equal(duplicated.length, 2);
    assert.equal(duplicated[0].sha256, duplicated[1].sha256, "the same page twice");
    assert.equal(new Set(keysOf(before.json)).size, keysOf(before.json).length, "no two resources own one object");
    const after = synth({ services: { app1: { ...httpService(8081), maintenance: { enabled: false, page: { html: "<p>app1 is down</p>" } } }, app2: httpService(8082) } });
    const idOf = (j: Json, key: string) => Object.entries(j.resource.aws_s3_object as Json).find(([, o]) => o.key === key)![0];
    const shared = `test-env/nodes/lb-a/files/${duplicated[1].sha256}`;
    assert.equal(idOf(after.json, shared), idOf(before.json, shared), "app2's page keeps its object and resource");
  });

  it("forgets the file objects of 0.2 (ids by path) instead of deleting them: the new resources own the same keys", () => {
    const env = loadEnvironment(join(__dirname, "..", "..", "examples", "agfa-ei-ha-pair.yaml"));
    const j = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
    const removed = (j.removed as Json[]).map((r) => [r.from, r.lifecycle.destroy]);
    // The address 0.2 gave lb-a's haproxy.cfg (from its synthesized JSON).
    assert.deepEqual(removed.find(([from]) => from === "aws_s3_object.config-store_lb-a---etc--haproxy--haproxycfg_2CEBB2DF"), ["aws_s3_object.config-store_lb-a---etc--haproxy--haproxycfg_2CEBB2DF", false]);
    assert.ok(removed.every(([from]) => !(from as string).slice("aws_s3_object.".length).split("_").includes("manifest")), "the manifest keeps its resource");
    assert.ok(removed.every(([from]) => !Object.keys(j.resource.aws_s3_object).includes((from as string).slice("aws_s3_object.".length))));
  });

  it("each node finds its store through its instance tags (they change in place), unless the environment's tags keep EC2 from exposing them", () => {
    const instances = Object.values(json.resource.aws_instance) as Json[];
    for (const instance of instances) {
      assert.equal(instance.metadata_options.instance_metadata_tags, "enabled");
      assert.match(instance.tags["imaging-lb:config-bucket"], /^\$\{aws_s3_bucket\..*\.bucket\}$/);
      assert.equal(instance.tags["imaging-lb:config-prefix"], "test-env");
    }
    const slash = synth({ tags: { "cost-center/owner": "radiology" } }).json;
    assert.equal((Object.values(slash.resource.aws_instance)[0] as Json).metadata_options.instance_metadata_tags, "disabled");
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
