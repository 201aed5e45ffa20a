/**
 * The node agent on the unhappy paths, one test per defect of issue 20, on the agent fault bed
 * (test/helpers/agent-bed.ts): the product's launcher, loader and agent in sandbox roots; moto on loopback as
 * S3, KMS and Secrets Manager (SIMULATED AWS, reached with the real AWS CLI and the agent's own SigV4 client);
 * a real HAProxy in master-worker mode in front of real HTTP(S) servers; real haproxy -dW -c and keepalived
 * -t. SIMULATED: systemd (a `systemctl` stub), `ip` (which node holds the VIP), and, where a test says so, a
 * crash (the stub kills the agent during its reload) or a failing reload.
 *
 * `IMAGING_LB_BED_OLD_AGENT=<the 0.2 agent script> node --test dist/test/agent/faults.test.js` runs the same
 * tests against the agent these defects were found in.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createUnixServer, type Server as NetServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { agentFiles, bundleFile, type ConfigBundle } from "../../lib/node/bundle";
import { NODE_CONTRACT, storeKeys } from "../../lib/contract/node-contract";
import { BED_BUCKET, BED_ENVIRONMENT, makeCa, startAgentBed, startHttpServer, startHttpsServer, type AgentBed, type BedServer, type Json } from "../helpers/agent-bed";
import { startFakeImds } from "../helpers/fake-imds";
import { signatureDocument } from "../helpers/store-publisher";

const live = (bed: AgentBed, node: string, path: string) => readFileSync(join(bed.node(node).root, path), "utf8");
const reloads = (bed: AgentBed, node: string) => bed.systemctlCalls(node).filter((c) => /^(reload|restart) haproxy\.service$/.test(c)).length;

async function apply(bed: AgentBed, node: string, bundle: ConfigBundle, args: readonly string[] = [], env: Record<string, string> = {}): Promise<string> {
  const run = await bed.run(node, args, env);
  const status = await bed.status(node);
  // The status document the agent writes is exactly the one the contract (and so the CLI) knows.
  if (!process.env.IMAGING_LB_BED_OLD_AGENT) assert.deepEqual(Object.keys(status ?? {}).sort(), [...NODE_CONTRACT.status.fields].sort());
  assert.equal(status?.appliedVersion, bundle.version, `${node} should have applied ${bundle.version}:\n${run.log}\nstatus: ${JSON.stringify(status)}`);
  return run.log;
}

describe("the agent on the unhappy paths (SIMULATED AWS and systemd; real HAProxy)", { timeout: 600_000 }, () => {
  let bed: AgentBed;
  let s1: BedServer;
  let s2: BedServer;
  let good: ConfigBundle;

  before(async () => {
    bed = await startAgentBed(["lb-a"]);
    s1 = await startHttpServer();
    s2 = await startHttpServer();
    good = bed.bundle("lb-a", { servers: [s1.port, s2.port] });
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });
  after(async () => {
    await bed?.close();
    await s1?.close();
    await s2?.close();
  });

  /** Publishes `bundle`, runs one cycle, and checks that nothing of it reached the node. */
  async function refused(bundle: ConfigBundle, publish: () => Promise<void> = () => bed.publish([bundle])): Promise<Json> {
    const cfgBefore = live(bed, "lb-a", "etc/haproxy/haproxy.cfg");
    await publish();
    const run = await bed.run("lb-a");
    const status = (await bed.status("lb-a"))!;
    assert.equal(status.appliedVersion, good.version, `still the good version:\n${run.log}`);
    assert.equal(live(bed, "lb-a", "etc/haproxy/haproxy.cfg"), cfgBefore, "haproxy.cfg untouched");
    return status;
  }

  it("1. a signed manifest naming a path outside the contract (cron, root's keys, a setuid agent) is refused; nothing is written", async () => {
    const launcherAs = (mode: string) => agentFiles().map((f) => bundleFile(f.path, f.path === NODE_CONTRACT.paths.launcher ? mode : f.mode, f.content));
    for (const [what, spec, path] of [
      ["a cron job", { extraFiles: [bundleFile("/etc/cron.d/imaging-lb", "0644", "* * * * * root touch /tmp/imaging-lb-pwned\n")] }, "/etc/cron.d/imaging-lb"],
      ["root's SSH keys", { extraFiles: [bundleFile("/root/.ssh/authorized_keys", "0600", "ssh-ed25519 AAAA attacker\n")] }, "/root/.ssh/authorized_keys"],
      ["the agent's launcher made setuid", { agent: launcherAs("4755") }, undefined],
    ] as const) {
      const status = await refused(bed.bundle("lb-a", { servers: [s1.port, s2.port], ...spec }));
      assert.equal(status.result, "refused", `${what}: ${JSON.stringify(status)}`);
      assert.match(String(status.error), /not one a bundle may carry|must have mode/, what);
      if (path) assert.ok(!existsSync(join(bed.node("lb-a").root, path)), `${what}: ${path} not written`);
    }
    assert.equal(statSync(join(bed.node("lb-a").root, NODE_CONTRACT.paths.launcher)).mode & 0o7777, 0o755, "the launcher keeps its mode");
  });

  it("1. a manifest the deploy did not sign is never applied: replaced alone, signed for another node, with another key, or unsigned", async () => {
    const bundle = bed.bundle("lb-a", { servers: [s1.port, s2.port], marker: "attacker" });
    const manifestKey = storeKeys.manifest(BED_ENVIRONMENT, "lb-a");
    const signatureKey = storeKeys.signature(BED_ENVIRONMENT, "lb-a");
    const otherKey = JSON.parse(await bed.aws(["kms", "create-key", "--description", "SIMULATED attacker key"])).KeyMetadata.KeyId as string;
    const cases: Array<[string, () => Promise<void>, RegExp]> = [
      ["the manifest replaced, its signature not", () => bed.put(manifestKey, bundle.manifestText), /does not match its signature/],
      ["signed for another node", async () => {
        await bed.put(signatureKey, await signatureDocument(bed.aws, BED_ENVIRONMENT, bundle, bed.dir, { node: "lb-b" }));
        await bed.put(manifestKey, bundle.manifestText);
      }, /does not verify|another manifest or node/],
      ["signed with another key", async () => {
        await bed.put(signatureKey, await signatureDocument(bed.aws, BED_ENVIRONMENT, bundle, bed.dir, { keyId: otherKey }));
        await bed.put(manifestKey, bundle.manifestText);
      }, /does not verify/],
      ["signing another manifest's digest", async () => {
        await bed.put(signatureKey, await signatureDocument(bed.aws, BED_ENVIRONMENT, bundle, bed.dir, { digest: good.manifestSha256 }));
        await bed.put(manifestKey, bundle.manifestText);
      }, /another manifest or node/],
      ["no signature at all", async () => {
        await bed.aws(["s3api", "delete-object", "--bucket", BED_BUCKET, "--key", signatureKey]);
        await bed.put(manifestKey, bundle.manifestText);
      }, /does not exist/],
    ];
    for (const [what, publish, error] of cases) {
      const status = await refused(bundle, publish);
      assert.match(String(status.error), error, `${what}: ${JSON.stringify(status)}`);
    }
    await bed.publish([good]); // the deploy puts back a signed manifest
    await apply(bed, "lb-a", good);
  });

  it("1. bundle.env and the secrets list are checked against the contract, never evaluated", async () => {
    const marker = join(bed.dir, "pwned");
    const settings = (extra: string) =>
      `RUNTIME_SOCKET=${bed.node("lb-a").socket}\nSERVER_STATE_FILE=${join(bed.node("lb-a").root, "var/lib/haproxy/server-state")}\nHAPROXY_ENV_FILE=/etc/imaging-lb/haproxy.env\nHEALTH_URL=http://127.0.0.1:${bed.node("lb-a").healthPort}/healthz\nGATE_SECONDS=4\n${extra}\n`;
    for (const [what, spec] of [
      ["socat address injection", { rawSettings: settings(`RUNTIME_SOCKET=/tmp/x.sock!!SYSTEM:touch ${marker}`).replace(/^RUNTIME_SOCKET=\/[^!\n]*\n/, "") }],
      ["bash arithmetic injection", { rawSettings: settings(`GATE_SECONDS=PROG[$(touch ${marker})]`).replace("GATE_SECONDS=4\n", "") }],
      ["a PEM written outside the certificate folder", { secretLines: [`pem ${bed.statsArn} /etc/cron.d/imaging-lb.pem`] }],
    ] as const) {
      const status = await refused(bed.bundle("lb-a", { servers: [s1.port, s2.port], ...spec }));
      assert.equal(status.result, "refused", `${what}: ${JSON.stringify(status)}`);
      assert.ok(!existsSync(marker), `${what}: nothing ran`);
      assert.ok(!existsSync(join(bed.node("lb-a").root, "etc/cron.d/imaging-lb.pem")), `${what}: nothing written`);
    }
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("4. a crash between install and gate, then HAProxy restarted (a reboot), does not turn a bad version into the good one", async () => {
    const down = await startHttpServer();
    await down.close(); // a port that refuses: the bad version's s1 can never pass a check
    const bad = bed.bundle("lb-a", { servers: [down.port, s2.port] });
    await bed.publish([bad]);
    writeFileSync(join(bed.node("lb-a").root, "crash-agent-on-reload"), "");
    const crashed = await bed.run("lb-a");
    assert.notEqual(crashed.code, 0, "the SIMULATED crash killed the agent during its reload");
    assert.equal(live(bed, "lb-a", "etc/haproxy/haproxy.cfg"), bad.files.find((f) => f.path === "/etc/haproxy/haproxy.cfg")!.content, "the bad version was installed");
    assert.equal((await bed.status("lb-a"))?.result, "applying", "the crash left the status applying");
    await bed.systemctl("lb-a", ["restart", "haproxy.service"]); // SIMULATED reboot: HAProxy starts with what is installed
    const recovered = await bed.run("lb-a");
    const status = (await bed.status("lb-a"))!;
    assert.equal(status.appliedVersion, good.version, `the bad version never becomes the good one:\n${recovered.log}`);
    assert.notEqual(status.result, "applying", "the status no longer says applying");
    assert.equal(live(bed, "lb-a", "etc/haproxy/haproxy.cfg"), good.files.find((f) => f.path === "/etc/haproxy/haproxy.cfg")!.content, "rolled back");
    assert.match(String(status.error), /s1|interrupted/);
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("5. a rollback whose reload fails says rollback-failed, not rolled-back", async () => {
    const down = await startHttpServer();
    await down.close();
    const bad = bed.bundle("lb-a", { servers: [down.port, s2.port], marker: "rollback-fails" });
    const root = bed.node("lb-a").root;
    // The apply's reload works, the rollback's does not (SIMULATED failing reload).
    writeFileSync(join(root, "fail-reloads-after"), String(bed.systemctlCalls("lb-a").filter((c) => c === "reload haproxy.service").length + 1));
    try {
      await bed.publish([bad]);
      const run = await bed.run("lb-a");
      const status = (await bed.status("lb-a"))!;
      assert.equal(status.result, "rollback-failed", `${run.log}\n${JSON.stringify(status)}`);
      assert.match(String(status.error), /ROLLBACK FAILED/);
    } finally {
      rmSync(join(root, "fail-reloads-after"), { force: true });
    }
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("2. a failed version does not stop the certificate refresh; `refresh` and `retry` work whatever the state", async () => {
    const certA = makeCa(bed.dir, "web-a");
    const certB = makeCa(bed.dir, "web-b");
    const web = await bed.putSecret("bed/web", certA.certPem + certA.keyPem);
    const withTls = bed.bundle("lb-a", { servers: [s1.port, s2.port], webPemArn: web });
    await bed.publish([withTls]);
    await apply(bed, "lb-a", withTls);
    const later = await startHttpServer();
    const laterPort = later.port;
    await later.close();
    const failing = bed.bundle("lb-a", { servers: [laterPort, s2.port], webPemArn: web });
    await bed.publish([failing]);
    await bed.run("lb-a");
    assert.equal((await bed.status("lb-a"))?.result, "rolled-back");
    // The certificate is rotated in Secrets Manager while the node holds a failed version.
    await bed.putSecret("bed/web", certB.certPem + certB.keyPem);
    const run = await bed.run("lb-a", [], { IMAGING_LB_SECRETS_REFRESH_SECONDS: "0" });
    assert.equal(live(bed, "lb-a", "etc/haproxy/certs/web.pem"), certB.certPem + certB.keyPem, `the daily refresh ran in the failed state:\n${run.log}`);
    const subject = execFileSync("bash", ["-c", `openssl s_client -connect 127.0.0.1:${bed.node("lb-a").tlsPort} </dev/null 2>/dev/null | openssl x509 -noout -issuer`], { encoding: "utf8" });
    assert.match(subject, /web-b CA/, "HAProxy serves the new certificate");
    // The operator's refresh is heard in the failed state too (queued on the node, acted on by the next cycle).
    await bed.putSecret("bed/web", certA.certPem + certA.keyPem);
    const queued = await bed.launcher("lb-a", ["refresh"]);
    assert.equal(queued.code, 0, queued.log);
    await bed.run("lb-a");
    assert.equal(live(bed, "lb-a", "etc/haproxy/certs/web.pem"), certA.certPem + certA.keyPem, "refresh worked");
    // A failed version is retried on the operator's word (`imaging-lb retry` writes this object), once its server is back.
    const back = await startHttpServer(laterPort);
    try {
      const id = "3f0c9b5e-0000-4000-8000-000000000001";
      await bed.put(storeKeys.command(BED_ENVIRONMENT, "lb-a"), JSON.stringify({ id, node: "lb-a", command: "retry", issuedAt: new Date().toISOString(), issuedBy: "arn:aws:iam::123456789012:user/operator" }));
      await apply(bed, "lb-a", failing);
      assert.equal((await bed.status("lb-a"))?.lastCommand?.id, id, "the status names the command it acted on");
      // The same command object read again is not acted on twice.
      await bed.publish([good]);
      await apply(bed, "lb-a", good);
    } finally {
      await back.close();
    }
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("3. a refreshed CA that passes haproxy -c but fails the gate is rolled back once, and not reloaded again on every poll", async () => {
    const ca1 = makeCa(bed.dir, "backend-1");
    const ca2 = makeCa(bed.dir, "backend-2");
    const tls = await startHttpsServer(ca1.keyPem, ca1.certPem);
    try {
      const caArn = await bed.putSecret("bed/backend-ca", ca1.caPem);
      const verified = bed.bundle("lb-a", { servers: [tls.port], caSecretArn: caArn });
      await bed.publish([verified]);
      await apply(bed, "lb-a", verified);
      await bed.putSecret("bed/backend-ca", ca2.caPem); // a valid PEM, the wrong CA: every check fails
      const before = reloads(bed, "lb-a");
      const refresh = await bed.run("lb-a", [], { IMAGING_LB_SECRETS_REFRESH_SECONDS: "0" });
      assert.equal(reloads(bed, "lb-a"), before + 2, `one reload and its rollback:\n${refresh.log}`);
      for (let i = 0; i < 3; i++) await bed.run("lb-a", [], { IMAGING_LB_SECRETS_REFRESH_SECONDS: "0" });
      assert.equal(reloads(bed, "lb-a"), before + 2, "no reload loop");
      assert.equal(live(bed, "lb-a", "etc/haproxy/certs/ca.pem"), ca1.caPem, "the working CA stays");
      const status = (await bed.status("lb-a"))!;
      assert.equal(status.secrets.result, "failed", JSON.stringify(status.secrets));
      assert.equal(status.appliedVersion, verified.version);
    } finally {
      await tls.close();
    }
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("9. a transient error is `retrying` (retryable, with its next attempt), not failed", async () => {
    const missing = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:bed/not-yet-AbCdEf";
    const pending = bed.bundle("lb-a", { servers: [s1.port, s2.port], secretLines: [`pem ${missing} /etc/haproxy/certs/later.pem`] });
    await bed.publish([pending]);
    await bed.run("lb-a");
    const status = (await bed.status("lb-a"))!;
    assert.equal(status.result, "retrying", JSON.stringify(status));
    assert.equal(status.retryable, true);
    assert.ok(status.nextRetryAt, "says when it tries again");
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("10. a full disk during a refresh leaves the live PEM whole", async (t) => {
    const certs = join(bed.node("lb-a").root, "etc/haproxy/certs");
    const small = makeCa(bed.dir, "small");
    const web = await bed.putSecret("bed/web-disk", small.certPem + small.keyPem);
    const bundle = bed.bundle("lb-a", { servers: [s1.port, s2.port], webPemArn: web });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", certs]);
    t.after(() => execFileSync("umount", [certs]));
    await bed.publish([bundle]);
    await apply(bed, "lb-a", bundle);
    const whole = live(bed, "lb-a", "etc/haproxy/certs/web.pem");
    // Fill the file system, then rotate to a PEM that no longer fits (a long chain).
    writeFileSync(join(certs, "filler"), Buffer.alloc(64 * 1024 - 8 * 1024 - whole.length * 2));
    const big = makeCa(bed.dir, "big");
    await bed.putSecret("bed/web-disk", `${big.certPem}${"# intermediate certificate comment line, as a long chain makes the file big\n".repeat(200)}${big.keyPem}`);
    const run = await bed.run("lb-a", [], { IMAGING_LB_SECRETS_REFRESH_SECONDS: "0" });
    assert.equal(live(bed, "lb-a", "etc/haproxy/certs/web.pem"), whole, `the live PEM is whole:\n${run.log}`);
    const status = (await bed.status("lb-a"))!;
    assert.notEqual(status.secrets.result, "ok", JSON.stringify(status.secrets));
    assert.match(String(status.secrets.error), /No space left|ENOSPC|Errno 28/);
    rmSync(join(certs, "filler"));
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("11. a runtime socket that does not answer never turns a reload into a restart (no session is cut)", async (t) => {
    const hung = join(bed.dir, "hung.sock");
    // Accepts and reads every request, never answers (reading lets it see each client go away).
    const server: NetServer = createUnixServer((connection) => connection.resume());
    await new Promise<void>((resolve) => server.listen(hung, resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const master = bed.masterPid("lb-a");
    assert.ok(master, "HAProxy runs");
    const restartsBefore = bed.systemctlCalls("lb-a").filter((c) => c === "restart haproxy.service").length;
    const silent = bed.bundle("lb-a", { servers: [s1.port, s2.port], marker: "silent socket", settings: { RUNTIME_SOCKET: hung } });
    await bed.publish([silent]);
    const run = await bed.run("lb-a");
    assert.equal(bed.systemctlCalls("lb-a").filter((c) => c === "restart haproxy.service").length, restartsBefore, `no restart:\n${run.log}`);
    assert.equal(bed.masterPid("lb-a"), master, "the same HAProxy master: every established connection kept");
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("the agent's own SigV4 requests are the ones moto checks: with a wrong secret key nothing is read or applied", async () => {
    const next = bed.bundle("lb-a", { servers: [s1.port, s2.port], marker: "unsigned requests" });
    await bed.publish([next]);
    const run = await bed.run("lb-a", [], { AWS_SECRET_ACCESS_KEY: "not-the-key" });
    assert.match(run.log, /SignatureDoesNotMatch|HTTP403|InvalidSignature|403/, run.log);
    assert.equal((await bed.status("lb-a"))?.appliedVersion, good.version);
    await apply(bed, "lb-a", next); // the right key: the same bundle applies
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });

  it("7. the store's location follows the instance tags (a renamed bucket), read through IMDSv2", async (t) => {
    const imds = await startFakeImds([], { tags: { [NODE_CONTRACT.instanceTags.bucket]: BED_BUCKET, [NODE_CONTRACT.instanceTags.prefix]: BED_ENVIRONMENT } });
    t.after(() => imds.close());
    const envFile = join(bed.node("lb-a").root, "etc/imaging-lb/agent.env");
    const original = readFileSync(envFile, "utf8");
    t.after(() => writeFileSync(envFile, original));
    // The machine's user data names the old bucket; the tag names the one the stack moved the store to.
    writeFileSync(envFile, original.replace(`BUCKET=${BED_BUCKET}`, "BUCKET=imaging-lb-renamed-away"));
    const moved = bed.bundle("lb-a", { servers: [s1.port, s2.port], marker: "after the move" });
    await bed.publish([moved]);
    const run = await bed.run("lb-a", [], { IMAGING_LB_NO_TAGS: "0", IMAGING_LB_IMDS_URL: imds.url });
    const status = (await bed.status("lb-a"))!;
    assert.equal(status.appliedVersion, moved.version, run.log);
    assert.equal(status.storeSource, "tags");
    assert.ok(imds.unauthorized() === 0, "IMDSv2 only");
    await bed.publish([good]);
    await apply(bed, "lb-a", good, [], { IMAGING_LB_NO_TAGS: "0", IMAGING_LB_IMDS_URL: imds.url });
  });

  it("the agent changes in place: a new agent is gated by its self-test, and one that never completes a run is refused and rolled back", async () => {
    const withAgent = (edit: (source: string) => string) =>
      agentFiles().map((f) => bundleFile(f.path, f.mode, f.path.endsWith("/__main__.py") ? edit(f.content) : f.content));
    // A new agent (here: one more comment) arrives with a bundle; the launcher runs it from then on.
    const next = bed.bundle("lb-a", { servers: [s1.port, s2.port], agent: withAgent((s) => `${s}# the next agent\n`) });
    await bed.publish([next]);
    await apply(bed, "lb-a", next);
    await bed.run("lb-a");
    assert.equal((await bed.status("lb-a"))?.agentVersion, next.version, "the status names the running agent's version");
    // An agent that does not even load is refused before anything is installed.
    const broken = bed.bundle("lb-a", { servers: [s1.port, s2.port], agent: withAgent((s) => `${s}\ndef broken(:\n`) });
    const status = await (async () => {
      await bed.publish([broken]);
      await bed.run("lb-a");
      return (await bed.status("lb-a"))!;
    })();
    assert.equal(status.result, "refused");
    assert.match(String(status.error), /self-test/);
    assert.equal(status.appliedVersion, next.version);
    // One that passes its self-test but never completes a run: three starts, then the launcher falls back to the
    // agent before it, which rolls the bundle back and says why.
    const crashing = bed.bundle("lb-a", {
      servers: [s1.port, s2.port],
      agent: withAgent((s) => s.replace("    agent = Agent(root)\n", '    agent = Agent(root)\n    raise SystemExit("SIMULATED agent that never completes a run")\n')),
    });
    await bed.publish([crashing]);
    await apply(bed, "lb-a", crashing);
    for (let start = 0; start < 3; start++) {
      const crash = await bed.run("lb-a");
      assert.notEqual(crash.code, 0, crash.log);
    }
    const fallback = await bed.run("lb-a");
    assert.match(fallback.log, /never completed a run/);
    const after = (await bed.status("lb-a"))!;
    assert.equal(after.appliedVersion, next.version, fallback.log);
    assert.equal(after.result, "rolled-back");
    assert.match(String(after.error), /never completed a run/);
    await bed.publish([good]);
    await apply(bed, "lb-a", good);
  });
});

describe("a pair on the unhappy paths (SIMULATED AWS, systemd and VRRP role; real HAProxy and keepalived -t)", { timeout: 600_000 }, () => {
  let bed: AgentBed;
  let servers: BedServer[];
  // keepalived -t wants a real, non-loopback interface: the host's first one (the config only passes the check).
  const iface = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).split("\n").map((l) => l.split(": ")[1]?.split("@")[0]).find((n) => n && n !== "lo") ?? "eth0";
  const KEEPALIVED = (vips: string[]) =>
    `global_defs {\n  router_id bed\n}\nvrrp_instance VI_1 {\n  state BACKUP\n  interface ${iface}\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n  virtual_ipaddress {\n${vips.map((v) => `    ${v}/32\n`).join("")}  }\n}\n`;
  const TAKEOVER = `#!/bin/bash\n# SIMULATED takeover: records that it ran\necho "takeover $*" >>"$IMAGING_LB_ROOT/takeover.calls"\n`;
  let n = 0;
  const release = () => (++n).toString(16).padStart(16, "0");
  const pairBundles = (spec: { marker?: string; vips?: string[]; heartbeat?: string; keepalived?: string } = {}) => {
    const r = release();
    return ["lb-a", "lb-b"].map((node) =>
      bed.bundle(node, {
        servers: servers.map((s) => s.port),
        marker: spec.marker,
        release: r,
        keepalived: spec.keepalived ?? KEEPALIVED(spec.vips ?? ["192.0.2.100"]),
        takeover: TAKEOVER,
        settings: { HEARTBEAT_SECONDS: spec.heartbeat ?? "60" },
      }),
    );
  };
  /** Puts the VIP where the test wants it and lets both agents report their role (as their next poll would). */
  const roles = async (a: boolean, b: boolean) => {
    bed.setVip("lb-a", a);
    bed.setVip("lb-b", b);
    await bed.run("lb-a");
    await bed.run("lb-b");
  };
  const takeovers = (node: string) => {
    const file = join(bed.node(node).root, "takeover.calls");
    return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").length : 0;
  };

  before(async () => {
    bed = await startAgentBed(["lb-a", "lb-b"]);
    servers = [await startHttpServer(), await startHttpServer()];
    const first = pairBundles({ marker: "v1" });
    await bed.publish(first);
    bed.setVip("lb-a", true);
    bed.setVip("lb-b", false);
    for (const [i, node] of ["lb-a", "lb-b"].entries()) await apply(bed, node, first[i]);
  });
  after(async () => {
    await bed?.close();
    for (const s of servers ?? []) await s.close();
  });

  it("12. split brain (both hold the VIPs): the secondary applies first, the primary after it", async () => {
    await roles(true, true);
    const [a, b] = pairBundles({ marker: "split brain" });
    await bed.publish([a, b]);
    await bed.run("lb-a");
    assert.equal((await bed.status("lb-a"))?.result, "waiting-for-peer", "the primary waits");
    await apply(bed, "lb-b", b);
    await apply(bed, "lb-a", a);
  });

  it("12. no MASTER (neither holds the VIPs): never both at once — the secondary first, the primary after it", async () => {
    await roles(false, false);
    const [a, b] = pairBundles({ marker: "no master" });
    await bed.publish([a, b]);
    await bed.run("lb-a");
    const primary = (await bed.status("lb-a"))!;
    assert.equal(primary.result, "waiting-for-peer", JSON.stringify(primary));
    assert.notEqual(primary.appliedVersion, a.version);
    await apply(bed, "lb-b", b);
    await apply(bed, "lb-a", a);
  });

  it("8. a VIP added to a pair is assigned in EC2 by the MASTER as soon as it applies (keepalived adds it locally, notify_master does not run)", async () => {
    await roles(true, false);
    const before = { a: takeovers("lb-a"), b: takeovers("lb-b") };
    const [a, b] = pairBundles({ marker: "new vip", vips: ["192.0.2.100", "192.0.2.101"] });
    await bed.publish([a, b]);
    await apply(bed, "lb-b", b);
    await apply(bed, "lb-a", a);
    assert.equal(takeovers("lb-a"), before.a + 1, "the MASTER ran the takeover once");
    assert.equal(takeovers("lb-b"), before.b, "the BACKUP did not");
  });

  it("a keepalived.conf that adds a process check restarts keepalived (a reload would not subscribe to process events); other changes reload it", async () => {
    await roles(true, false);
    for (const node of ["lb-a", "lb-b"]) writeFileSync(join(bed.node(node).root, "keepalived.active"), "");
    const calls = (node: string) => bed.systemctlCalls(node).filter((c) => / keepalived\.service$/.test(c) && !c.startsWith("is-active"));
    const before = calls("lb-b").length;
    const tracked = (vips: string[]) => KEEPALIVED(vips).replace("vrrp_instance", "vrrp_track_process haproxy {\n  process haproxy\n}\nvrrp_instance");
    const [a, b] = pairBundles({ marker: "process check", keepalived: tracked(["192.0.2.100"]) });
    await bed.publish([a, b]);
    await apply(bed, "lb-b", b);
    await apply(bed, "lb-a", a);
    assert.deepEqual(calls("lb-b").slice(before), ["restart keepalived.service"]);
    const [a2, b2] = pairBundles({ marker: "another vip", keepalived: tracked(["192.0.2.100", "192.0.2.101"]) });
    await bed.publish([a2, b2]);
    await apply(bed, "lb-b", b2);
    assert.deepEqual(calls("lb-b").slice(before), ["restart keepalived.service", "reload keepalived.service"]);
    await apply(bed, "lb-a", a2);
  });

  it("2. a dead peer does not hold the MASTER for ever: once its status is stale the MASTER applies alone", async () => {
    // Both nodes on a 10 s heartbeat (a peer is stale after 30 s of silence), rolled out the normal way.
    const [a1, b1] = pairBundles({ marker: "short heartbeat", heartbeat: "10" });
    await roles(true, false);
    await bed.publish([a1, b1]);
    await apply(bed, "lb-b", b1);
    await apply(bed, "lb-a", a1);
    const [a2] = pairBundles({ marker: "peer died", heartbeat: "10" });
    await bed.publish([a2]);
    await bed.run("lb-b"); // lb-b's last word ... then it dies
    await bed.run("lb-a");
    assert.equal((await bed.status("lb-a"))?.result, "waiting-for-peer", "a live peer is waited for");
    await new Promise((r) => setTimeout(r, 31_000)); // lb-b says nothing more: its status goes stale after 30 s
    const run = await bed.run("lb-a");
    const status = (await bed.status("lb-a"))!;
    assert.equal(status.appliedVersion, a2.version, run.log);
    assert.match(run.log, /silent/);
  });
});

describe("the machine's loader (first boot)", { timeout: 300_000 }, () => {
  it("stages the agent only from a manifest signed for this node; refuses a tampered one and stages nothing", async (t) => {
    const bed = await startAgentBed(["lb-a"]);
    t.after(() => bed.close());
    const srv = await startHttpServer();
    t.after(() => srv.close());
    const bundle = bed.bundle("lb-a", { servers: [srv.port] });
    await bed.publish([bundle], { sign: false });
    await bed.put(storeKeys.signature(BED_ENVIRONMENT, "lb-a"), await signatureDocument(bed.aws, BED_ENVIRONMENT, bundle, bed.dir, { node: "lb-b" }));
    const refused = await bed.run("lb-a", [], { IMAGING_LB_LOADER_DEADLINE_SECONDS: "5" });
    assert.notEqual(refused.code, 0);
    assert.match(refused.log, /does not verify|another manifest or node|refused/);
    assert.ok(!existsSync(join(bed.node("lb-a").root, NODE_CONTRACT.paths.stateDir, "boot")), "nothing staged");
    await bed.publish([bundle]);
    await apply(bed, "lb-a", bundle);
  });
});

describe("three nodes behind NLBs roll a release one at a time (SIMULATED AWS and systemd; real HAProxy)", { timeout: 600_000 }, () => {
  // bundle.env as lib/node/bundle.ts writes it for three nodes in vipMode nlb: no PEER, no MASTER_VIP; PEERS
  // and the roll order (ROLL_AFTER): lb-b first, lb-c after it, the primary lb-a last.
  const NODES = ["lb-a", "lb-b", "lb-c"];
  const AFTER: Record<string, string> = { "lb-a": "lb-b,lb-c", "lb-b": "", "lb-c": "lb-b" };
  let bed: AgentBed;
  let servers: BedServer[];
  let n = 0;
  const bundles = (marker: string) => {
    const release = (0x100 + ++n).toString(16).padStart(16, "0");
    return NODES.map((node) =>
      bed.bundle(node, {
        servers: servers.map((s) => s.port),
        marker,
        release,
        settings: {
          PEER: "",
          PEERS: NODES.filter((x) => x !== node).join(","),
          ROLL_AFTER: AFTER[node],
          NODE_ROLE: node === "lb-a" ? "primary" : "secondary",
          MASTER_VIP: "",
          HEARTBEAT_SECONDS: "60",
        },
      }),
    );
  };

  before(async () => {
    bed = await startAgentBed(NODES);
    servers = [await startHttpServer(), await startHttpServer()];
    const first = bundles("v1");
    await bed.publish(first);
    for (const [i, node] of NODES.entries()) await apply(bed, node, first[i]);
  });
  after(async () => {
    await bed?.close();
    for (const s of servers ?? []) await s.close();
  });

  it("lb-b applies first, lb-c after it, the primary lb-a last; each waits for the nodes before it", async () => {
    const [a, b, c] = bundles("v2");
    await bed.publish([a, b, c]);
    const waits = async (node: string, why: RegExp) => {
      const run = await bed.run(node);
      const status = (await bed.status(node))!;
      assert.equal(status.result, "waiting-for-peer", `${node}: ${run.log}\n${JSON.stringify(status)}`);
      assert.match(run.log, why);
    };
    await waits("lb-a", /roll order: lb-b applies before this node/);
    await waits("lb-c", /roll order: lb-b applies before this node/);
    await apply(bed, "lb-b", b);
    await waits("lb-a", /roll order: lb-c applies before this node/);
    await apply(bed, "lb-c", c);
    const log = await apply(bed, "lb-a", a);
    assert.match(log, /lb-b, lb-c applied release/);
  });
});
