/**
 * `imaging-lb diff` and `imaging-lb status`, run as the CLI process. `status` reads the nodes' status
 * objects with the AWS SDK from an S3 emulator (moto on loopback: SIMULATED AWS; the bucket name comes from
 * the emulator's STS account, as from a real account).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BucketLocationConstraint, CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { parse, stringify } from "yaml";
import { nodeBundle, storeKeys } from "../lib/node/bundle";
import { loadEnvironment } from "../lib/load/load";
import { HUNG_AFTER_MS, tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");
const PAIR = join(ROOT, "examples", "agfa-ei-ha-pair.yaml");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

describe("imaging-lb diff", () => {
  let work: { path: string; cleanup: () => void };
  before(() => {
    work = tempDir("cli-diff");
  });
  after(() => work.cleanup());

  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8" });
  const variant = (name: string, patch: (doc: Record<string, any>) => void): string => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const doc = parse(readFileSync(PAIR, "utf8"));
    patch(doc);
    const file = join(work.path, `${name}.yaml`);
    writeFileSync(file, stringify(doc));
    return file;
  };

  it("a timeout change: both nodes applied in place, with the haproxy.cfg diff", () => {
    const changed = variant("timeout", (d) => (d.services.dicom.timeouts = { client: "2h", server: "2h" }));
    const r = cli("diff", PAIR, changed);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^node lb-a: applied in place \(reload\)$/m);
    assert.match(r.stdout, /^node lb-b: applied in place \(reload\)$/m);
    assert.match(r.stdout, /^--- before\/etc\/haproxy\/haproxy\.cfg\n\+\+\+ after\/etc\/haproxy\/haproxy\.cfg\n@@ /m);
    assert.match(r.stdout, /^-    timeout client 1h$/m);
    assert.match(r.stdout, /^\+    timeout client 2h$/m);
    const json = JSON.parse(cli("diff", PAIR, changed, "--json").stdout);
    assert.deepEqual(json.nodes.map((n: { verdict: string }) => n.verdict), ["applied in place (reload)", "applied in place (reload)"]);
  });

  it("raising both generations at once exits 3 (the whole pair would be replaced)", () => {
    const both = variant("both", (d) => {
      d.loadBalancer.nodes["lb-a"].generation = 2;
      d.loadBalancer.nodes["lb-b"].generation = 2;
    });
    const r = cli("diff", PAIR, both);
    assert.equal(r.status, 3);
    assert.match(r.stdout, /UNSAFE: both nodes of the HA pair are replaced/);
    const one = cli("diff", PAIR, variant("one", (d) => (d.loadBalancer.nodes["lb-b"].generation = 2)));
    assert.equal(one.status, 0);
    assert.match(one.stdout, /^node lb-b: node replaced$/m);
    assert.match(one.stdout, /^node lb-a: no change$/m);
  });

  it("a renamed configuration bucket: in place (the nodes follow their instance tags), unless EC2 cannot expose the tags", () => {
    const moved = variant("bucket", (d) => (d.configStore = { bucket: "hospital-lb-config" }));
    const r = cli("diff", PAIR, moved);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^node lb-a: applied in place \(reload\)$/m);
    assert.match(r.stdout, /^ {2}the configuration store moves \(configStore\): .*instance tag imaging-lb:config-bucket in place; each node follows within 5 minutes, no instance is replaced$/m);
    assert.match(r.stdout, /^\+bucket: hospital-lb-config$/m);
    const slashTags = variant("bucket-slash", (d) => {
      d.configStore = { bucket: "hospital-lb-config" };
      d.tags = { "cost-center/owner": "radiology" };
    });
    assert.match(cli("diff", variant("slash-before", (d) => (d.tags = { "cost-center/owner": "radiology" })), slashTags).stdout, /EC2 does not expose this environment's instance tags/);
  });

  it("a VIP added to a pair: in place, and the MASTER assigns it in EC2 at once", () => {
    const vip = variant("vip", (d) => (d.vips.extra = { address: "10.40.2.102" }));
    const r = cli("diff", PAIR, vip);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^node lb-a: applied in place \(reload\)$/m);
    assert.match(r.stdout, /keepalived reloads, and the MASTER assigns its VIPs in EC2 right after \(a VIP added is routed at once, without a failover\)/);
  });

  it("--git compares with the file at a revision; an unknown revision is a located error", () => {
    const same = cli("diff", "--git", "HEAD", "examples/agfa-ei-ha-pair.yaml");
    assert.equal(same.status, 0, same.stderr);
    assert.match(same.stdout, /^node lb-a: no change$/m);
    const bad = cli("diff", "--git", "no-such-revision", "examples/agfa-ei-ha-pair.yaml");
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no-such-revision:examples\/agfa-ei-ha-pair\.yaml: cannot be read from git/);
    assert.equal(cli("diff", PAIR).status, 2, "one file without --git is wrong usage");
  });
});

describe("imaging-lb status (AWS SDK against an S3 emulator)", { timeout: 2 * HUNG_AFTER_MS }, () => {
  let moto: ChildProcess;
  let endpoint: string;
  let s3: S3Client;
  const env = loadEnvironment(PAIR);
  const bucket = `imaging-lb-${env.name}-123456789012`; // moto's STS account
  const awsEnv = () => ({ ...process.env, AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_REGION: env.region });
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8", env: awsEnv(), timeout: HUNG_AFTER_MS });
  const putStatus = (node: string, status: Record<string, unknown>) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: storeKeys.status(env.configStore.prefix, node), Body: JSON.stringify(status) }));

  before(async () => {
    const probe = spawnSync("python3", ["-c", "import moto.server"], { encoding: "utf8" });
    if (probe.status !== 0) throw new Error(`moto is not importable by python3 (the machine image's Python carries moto 5.2): ${probe.stderr}`);
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    moto = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    s3 = new S3Client({ endpoint, region: env.region, forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: env.region as BucketLocationConstraint } }));
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  });
  after(() => {
    moto?.kill("SIGTERM");
  });

  const versions = Object.fromEntries(env.nodes.map((n) => [n.name, nodeBundle(env, n.name).version]));

  it("no status yet: pending; --wait ends at its timeout with exit 1", () => {
    const r = cli("status", PAIR);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ei-ha-pair: release [0-9a-f]{16} in s3://${bucket}$`, "m"));
    assert.match(r.stdout, /^lb-a\s+pending\s+-\s+[0-9a-f]{16}\s+-\s+no status yet/m);
    const waited = cli("status", PAIR, "--wait", "--timeout", "1");
    assert.equal(waited.status, 1);
    assert.match(waited.stderr, /not converged within 1 s/);
  });

  it("a node rolled back the desired version: --wait exits 1 at once and names the error", async () => {
    await putStatus("lb-a", { node: "lb-a", result: "applied", appliedVersion: versions["lb-a"], desiredVersion: versions["lb-a"], updatedAt: "2026-11-28T10:00:00Z" });
    await putStatus("lb-b", { node: "lb-b", result: "rolled-back", appliedVersion: "0000000000000000", desiredVersion: versions["lb-b"], error: "not healthy within 31s: be_dicom/ei-core-1 (UP, check L7RSP)", updatedAt: "2026-11-28T10:00:01Z" });
    const r = cli("status", PAIR, "--wait", "--timeout", "60");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^lb-b\s+failed\s+.*rolled-back.*not healthy within 31s/m);
    assert.match(r.stderr, /the rollout failed on a node/);
  });

  it("a bootstrap that failed is failed (exit 1 at once), not pending until the timeout", async () => {
    await putStatus("lb-a", { node: "lb-a", result: "bootstrap-failed", error: "step install_packages failed (exit 100)", updatedAt: "2026-11-28T10:00:00Z" });
    const r = cli("status", PAIR, "--wait", "--timeout", "60");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^lb-a\s+failed\s+.*bootstrap-failed.*install_packages failed/m);
  });

  it("a transient error is retrying (the agent retries on its own): --wait goes on waiting", async () => {
    await putStatus("lb-b", { node: "lb-b", format: 2, result: "applied", appliedVersion: versions["lb-b"], desiredVersion: versions["lb-b"], heartbeatSeconds: 60 });
    await putStatus("lb-a", { node: "lb-a", format: 2, result: "retrying", retryable: true, nextRetryAt: "2026-11-28T10:02:00Z", appliedVersion: "0000000000000000", desiredVersion: versions["lb-a"], error: "cannot read arn:...: ThrottlingException", heartbeatSeconds: 60 });
    const r = cli("status", PAIR, "--wait", "--timeout", "2");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^lb-a\s+retrying\s+.*ThrottlingException \(next attempt 2026-11-28T10:02:00Z\)/m);
    assert.match(r.stderr, /not converged within 2 s/);
  });

  it("a status not rewritten for three heartbeats is stale: its agent or node is down, whatever the status says", async () => {
    await putStatus("lb-a", { node: "lb-a", format: 2, result: "applied", appliedVersion: versions["lb-a"], desiredVersion: versions["lb-a"], heartbeatSeconds: 1, agentVersion: versions["lb-a"] });
    await new Promise((r) => setTimeout(r, 4000));
    const r = cli("status", PAIR, "--wait", "--timeout", "1");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^lb-a\s+stale\s+.*no word for \d+s \(its agent or node is down/m);
    assert.match(r.stderr, /lb-a: stale, its agent is not running/);
    await putStatus("lb-a", { node: "lb-a", format: 2, result: "applied", appliedVersion: versions["lb-a"], desiredVersion: versions["lb-a"], heartbeatSeconds: 60 });
  });

  it("retry, release and refresh write a command for the node (or every node) that its agent reads", async () => {
    const r = cli("retry", PAIR, "--node", "lb-b");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^retry sent to ei-ha-pair\/lb-b \(id [0-9a-f-]{36}\)/m);
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: storeKeys.command(env.configStore.prefix, "lb-b") }));
    const command = JSON.parse(await object.Body!.transformToString()) as Record<string, string>;
    assert.equal(command.command, "retry");
    assert.equal(command.desiredVersion, versions["lb-b"]);
    assert.match(command.issuedBy, /^arn:aws:/);
    const all = cli("refresh", PAIR);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.stdout.trim().split("\n").length, 2, "both nodes");
    const wrong = cli("release", PAIR, "--node", "lb-c");
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /--node: ei-ha-pair has no node 'lb-c' \(nodes: lb-a, lb-b\)/);
  });

  it("a node whose metrics do not reach CloudWatch says so, converged all the same", async () => {
    await putStatus("lb-b", {
      node: "lb-b",
      format: 2,
      result: "applied",
      appliedVersion: versions["lb-b"],
      desiredVersion: versions["lb-b"],
      heartbeatSeconds: 60,
      metricsError: "cloudwatch: AccessDenied: not authorized to perform cloudwatch:PutMetricData",
    });
    const r = cli("status", PAIR);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^lb-b\s+converged\s+.*metrics not sent: cloudwatch: AccessDenied: not authorized/m);
  });

  it("every node applied the version the file renders: --wait exits 0; --json carries the same", async () => {
    await putStatus("lb-b", { node: "lb-b", result: "applied", appliedVersion: versions["lb-b"], desiredVersion: versions["lb-b"], role: "BACKUP", updatedAt: "2026-11-28T10:01:00Z" });
    const r = cli("status", PAIR, "--wait", "--json");
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.converged, true);
    assert.deepEqual(json.nodes.map((n: { state: string }) => n.state), ["converged", "converged"]);
  });
});

describe("the status document: one contract", () => {
  it("every field the CLI reads is a field the node contract says the agent writes", async () => {
    const { STATUS_FIELDS_READ } = await import("../lib/cli/commands/status");
    const { NODE_CONTRACT } = await import("../lib/contract/node-contract");
    const written = new Set<string>(NODE_CONTRACT.status.fields);
    assert.deepEqual(STATUS_FIELDS_READ.filter((f) => !written.has(f)), []);
  });
});
