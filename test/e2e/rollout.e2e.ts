/**
 * Day-2 changes without an outage, on the real network: the product's agent (the script the user data
 * installs) pulls bundles with the real AWS CLI from an S3 emulator (moto: SIMULATED AWS) and applies them
 * to a real HAProxy in master-worker mode with seamless reloads (systemd is SIMULATED by a stub that runs
 * HAProxy as the Debian unit does). While a DICOM association, an HL7 MLLP link and HTTPS load run the whole
 * time, five successive bundles are applied; then bad bundles are refused or rolled back; then an HA pair
 * rolls BACKUP first.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { storeKeys } from "../../lib/node/bundle";
import { HUNG_AFTER_MS, requireTool } from "../helpers/tools";
import {
  buildHl7Message,
  dicomSession,
  listNamespaces,
  parseAck,
  RUN_PREFIX,
  sendHl7,
  sweepStaleNamespaces,
  waitForApplied,
  type AgentNode,
} from "./harness";
import { startRolloutBed, thirdServer, type RolloutBed } from "./harness/rollout-bed";



/** Deep-merges `change` into `patch`, keeping its nulls (deletions of the environment's own keys). */
function accumulate(patch: Record<string, unknown>, change: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...patch };
  for (const [key, value] of Object.entries(change)) {
    const prev = out[key];
    const objects = [prev, value].every((v) => typeof v === "object" && v !== null && !Array.isArray(v));
    out[key] = objects ? accumulate(prev as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}

function wrkArgs(url: string, seconds: number): string[] {
  return ["-t1", "-c4", `-d${seconds}s`, "--timeout", "5s", url];
}
function wrkErrors(out: string): string[] {
  return [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses:.*/.exec(out)?.[0]].filter((e): e is string => e !== undefined);
}

describe("day-2 changes applied in place by the agent", { timeout: 900_000 }, () => {
  let bed: RolloutBed;
  let node: AgentNode;

  before(async () => {
    sweepStaleNamespaces();
    requireTool("wrk", "wrk");
    bed = await startRolloutBed({ pair: false });
    node = bed.nodes[0];
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("first apply: the agent fetches, validates and starts HAProxy with the bundle; status says applied", async () => {
    const env = bed.environment();
    const bundles = await bed.publish(env);
    const run = await node.run();
    assert.equal(run.code, 0, run.log);
    const status = await bed.store.status(env.configStore.prefix, node.node);
    assert.equal(status?.appliedVersion, bundles[node.node].version);
    assert.equal(status?.result, "applied");
    assert.match(String(status?.haproxyVersion), /HAProxy version/);
  });

  it("five changes under DICOM, HL7 and HTTPS traffic: 0 failed requests, 0 cut associations or links", async () => {
    const topo = bed.lb.topology;
    const core = bed.lb.vips[1];
    const web = bed.lb.vips[0];
    // Each change builds on the previous one.
    const changes: Array<[string, Record<string, unknown>]> = [
      ["add a server", thirdServer(bed.lb)],
      ["remove a server", { servers: { "ei-core-2": null } }],
      ["change a timeout", { services: { dicom: { timeouts: { client: "2h", server: "2h" } } } }],
      ["change a health check", { services: { dicom: { healthCheck: { interval: "2s" } } } }],
      ["swap the certificate", { tls: { certificates: { web: { secretArn: bed.secrets.certB } } } }],
    ];
    // Long-lived sessions that must survive every reload.
    const seconds = 75;
    const association = dicomSession(topo, "client1", { host: core, port: 104, calledAet: "EI_CORE", echoes: (seconds * 1000) / 500, pauseMs: 500 });
    const hl7Messages = Array.from({ length: seconds }, (_, i) => buildHl7Message({ controlId: `R${i}` }));
    const hl7 = sendHl7(topo, "client1", { host: core, port: 2310, messages: hl7Messages, pauseBetweenMs: 1000, timeoutMs: 15_000 });
    const load = topo.exec("client1", "wrk", wrkArgs(`https://${web}/system`, seconds), { timeoutMs: (seconds + 30) * 1000 });

    node.startPolling();
    const figures: string[] = [];
    try {
      let patch: Record<string, unknown> = {};
      for (const [what, change] of changes) {
        patch = accumulate(patch, change);
        const env = bed.environment(patch);
        const bundles = await bed.publish(env);
        const uploaded = bed.publishedAt;
        const status = await waitForApplied(bed.store, env.configStore.prefix, node.node, bundles[node.node].version, 90_000).catch((error: Error) => {
          throw new Error(`${what}: ${error.message}\nagent runs:\n${node.logs.slice(-3).join("\n")}`);
        });
        figures.push(`${what}: applied ${((Date.now() - uploaded) / 1000).toFixed(1)} s after upload (${String(status.appliedVersion)})`);
        await new Promise((r) => setTimeout(r, 3000));
      }
    } finally {
      await node.stopPolling();
    }
    const [dicom, mllp, wrk] = await Promise.all([association, hl7, load]);
    console.log(`rollout under load:\n  ${figures.join("\n  ")}`);
    console.log(`  DICOM association: ${dicom.echoesOk} C-ECHOs ok, released ${dicom.released}${dicom.error ? `, error ${dicom.error}` : ""}`);
    console.log(`  HL7 link: ${mllp.acks.length}/${hl7Messages.length} ACKs${mllp.error ? `, error ${mllp.error}` : ""}`);
    console.log(`  HTTPS: ${/(\d+) requests in/.exec(wrk.stdout)?.[1] ?? "?"} requests, errors: ${wrkErrors(wrk.stdout).join("; ") || "none"}`);
    assert.equal(dicom.error, undefined, "the DICOM association was never cut");
    assert.equal(dicom.echoesOk, (seconds * 1000) / 500);
    assert.ok(dicom.released);
    assert.equal(mllp.error, undefined, "the HL7 link was never cut");
    assert.deepEqual(mllp.acks.map((a) => parseAck(a).code), hl7Messages.map(() => "AA"));
    assert.equal(wrk.code, 0, wrk.stderr);
    assert.deepEqual(wrkErrors(wrk.stdout), [], wrk.stdout);
    assert.match(wrk.stdout, /requests in/);
    // Each change is in effect: the last bundle's server set and certificate are live.
    const stat = await topo.execOk("lb", "bash", ["-c", `echo "show servers state be_dicom" | socat stdio UNIX-CONNECT:${join(node.root, "run/haproxy/admin.sock")}`]);
    assert.match(stat.stdout, /ei-core-3/);
    assert.doesNotMatch(stat.stdout, /ei-core-2/);
    const cert = await topo.execOk("client1", "bash", ["-c", `openssl s_client -connect ${web}:443 </dev/null 2>/dev/null | openssl x509 -noout -subject`]);
    assert.match(cert.stdout, /CN ?= ?web-b/);
  });

  it("a drained server stays drained across a reload (server-state-file)", async () => {
    const socket = join(node.root, "run/haproxy/admin.sock");
    const topo = bed.lb.topology;
    await topo.execOk("lb", "bash", ["-c", `echo "set server be_dicom/ei-core-1 state drain" | socat stdio UNIX-CONNECT:${socket}`]);
    const env = bed.environment({ ...thirdServer(bed.lb), services: { dicom: { timeouts: { client: "3h", server: "3h" } } } });
    const bundles = await bed.publish(env);
    const run = await node.run();
    assert.equal(run.code, 0, run.log);
    await waitForApplied(bed.store, env.configStore.prefix, node.node, bundles[node.node].version, 5000);
    const stat = await topo.execOk("lb", "bash", ["-c", `echo "show stat" | socat stdio UNIX-CONNECT:${socket} | grep '^be_dicom,ei-core-1,'`]);
    assert.match(stat.stdout, /,DRAIN,/);
    await topo.execOk("lb", "bash", ["-c", `echo "set server be_dicom/ei-core-1 state ready" | socat stdio UNIX-CONNECT:${socket}`]);
  });

  it("the bootstrap's run (--boot) waits for a timer run in progress instead of skipping it, then confirms the version", async () => {
    const prefix = bed.environment().configStore.prefix;
    const bundles = await bed.publish(bed.environment({ services: { dicom: { timeouts: { client: "5h", server: "5h" } } } }));
    // A run in progress: something holds the agent's lock for 4 s (as the timer's run would).
    const lock = join(node.root, "var/lib/imaging-lb/agent/lock");
    const holder = bed.lb.topology.exec("lb", "flock", [lock, "sleep", "4"]);
    await new Promise((r) => setTimeout(r, 500));
    const skipped = await node.run();
    assert.equal(skipped.code, 0, skipped.log);
    assert.match(skipped.log, /another run is applying: skipped/);
    const started = Date.now();
    const boot = await node.run({}, ["--boot"]);
    await holder;
    assert.equal(boot.code, 0, boot.log);
    assert.match(boot.log, /another run is applying: waiting for it/);
    assert.ok(Date.now() - started >= 2500, "it waited for the lock");
    assert.equal((await bed.store.status(prefix, node.node))?.appliedVersion, bundles[node.node].version);
  });

  it("bad bundles: haproxy -c failure and a wrong checksum are refused, unhealthy backends rolled back; the old version keeps serving", async () => {
    const topo = bed.lb.topology;
    const prefix = bed.environment().configStore.prefix;
    const good = (await bed.store.status(prefix, node.node))?.appliedVersion;
    const stillServing = async () => {
      const echo = await topo.exec("client1", "echoscu", ["-aec", "EI_CORE", bed.lb.vips[1], "104"]);
      assert.equal(echo.code, 0, `DICOM still answers: ${echo.stderr}`);
    };

    // 1. haproxy -dW -c rejects it (an extra directive HAProxy does not know).
    const broken = bed.environment({ services: { dicom: { extraDirectives: { backend: ["option no-such-option"] } } } });
    await bed.publish(broken);
    let run = await node.run();
    assert.notEqual(run.code, 0);
    let status = await bed.store.status(prefix, node.node);
    assert.equal(status?.result, "refused");
    assert.match(String(status?.error), /refused: haproxy -dW -c/);
    assert.equal(status?.appliedVersion, good);
    await stillServing();
    // The bootstrap's first apply (--boot) reports a version that failed; the agent's polls do not retry it.
    run = await node.run({}, ["--boot"]);
    assert.equal(run.code, 1, run.log);
    assert.match(run.log, /version \w+ is not applied: .*refused: haproxy -dW -c/);
    const again = await node.run();
    assert.equal(again.code, 0, "a poll leaves a refused version alone");
    assert.doesNotMatch(again.log, /applying version/);

    // 2. A file whose content does not match the manifest's sha256.
    const tampered = bed.environment({ services: { dicom: { timeouts: { client: "4h", server: "4h" } } } });
    const bundles = await bed.publish(tampered);
    const cfg = bundles[node.node].files.find((f) => f.path === "/etc/haproxy/haproxy.cfg")!;
    const local = join(topo.workDir, "tampered.cfg");
    writeFileSync(local, `${cfg.content}# tampered\n`);
    await bed.store.aws(["s3api", "put-object", "--bucket", bed.store.bucket, "--key", storeKeys.file(prefix, node.node, cfg.sha256), "--body", local]);
    run = await node.run();
    assert.notEqual(run.code, 0);
    status = await bed.store.status(prefix, node.node);
    assert.match(String(status?.error), /does not match its sha256/);
    assert.equal(status?.appliedVersion, good);
    await stillServing();

    // 3. Valid, but the DICOM check now calls an AE title the PACS rejects: the servers never pass a check of
    // the new worker, the gate fails and the agent rolls back.
    const unhealthy = bed.environment({ services: { dicom: { healthCheck: { calledAeTitle: "NOT_EI_CORE" } } } });
    await bed.publish(unhealthy);
    run = await node.run({ IMAGING_LB_GATE_SECONDS: "8" });
    const stat = await topo.exec("lb", "bash", ["-c", `echo "show stat" | socat stdio UNIX-CONNECT:${join(node.root, "run/haproxy/admin.sock")} | cut -d, -f1,2,18,37`]);
    assert.notEqual(run.code, 0, `${run.log}\n${stat.stdout}`);
    status = await bed.store.status(prefix, node.node);
    assert.equal(status?.result, "rolled-back");
    assert.match(String(status?.error), /not healthy within 8s: .*be_dicom\/ei-core-1/);
    assert.equal(status?.appliedVersion, good);
    await stillServing();
  });
});

describe("HA pair: BACKUP first, MASTER after its peer reports the new version", { timeout: 3 * HUNG_AFTER_MS }, () => {
  let bed: RolloutBed;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startRolloutBed({ pair: true });
  });

  after(() => {
    bed?.destroy();
  });

  it("the BACKUP converges first, the MASTER second; with the BACKUP's agent killed mid-rollout the MASTER holds the old version and keeps serving", async () => {
    // SIMULATED: keepalived's role. The topology puts the VIPs on `lb` (MASTER), as keepalived would; the
    // agent reads its role from them. `keepalived -t` of the rendered keepalived.conf is proven in
    // keepalived-live.test.ts (Debian 12's 2.2.7 cannot test a non-root script_user), so here a stub answers it.
    const [master, backup] = bed.nodes;
    const stub = (n: AgentNode) => writeFileSync(join(n.root, "bin/keepalived"), "#!/bin/bash\n# SIMULATED keepalived -t (see the test)\n[ \"$1\" = -t ] && [ -s \"$3\" ]\n", { mode: 0o755 });
    bed.nodes.forEach(stub);
    const env1 = bed.environment();
    const prefix = env1.configStore.prefix;
    await bed.publish(env1);
    for (const n of [backup, master]) {
      const first = await n.run();
      assert.equal(first.code, 0, first.log);
    }

    // Version 2: the MASTER polls first but waits for its peer; once the BACKUP reports, its next poll applies.
    const v2 = await bed.publish(bed.environment(thirdServer(bed.lb)));
    let run = await master.run();
    assert.equal(run.code, 0, run.log);
    let status = await bed.store.status(prefix, master.node);
    assert.equal(status?.result, "waiting-for-peer");
    assert.notEqual(status?.appliedVersion, v2[master.node].version);
    run = await backup.run();
    assert.equal(run.code, 0, run.log);
    await waitForApplied(bed.store, prefix, backup.node, v2[backup.node].version, 5000);
    run = await master.run();
    assert.match(run.log, /version \w+ applied/, run.log);
    await waitForApplied(bed.store, prefix, master.node, v2[master.node].version, 5000);

    // Version 3: the BACKUP's agent is killed while it applies; the MASTER never gets a healthy peer report.
    await bed.publish(bed.environment({ ...thirdServer(bed.lb), services: { dicom: { timeouts: { client: "3h", server: "3h" } } } }));
    // The BACKUP's agent dies in its health gate, after installing and reloading (its fault-injection point:
    // the process exits as on a crash).
    const killed = await backup.run({ IMAGING_LB_FAILPOINT: "before-gate" });
    assert.notEqual(killed.code, 0);
    assert.equal((await bed.store.status(prefix, backup.node))?.result, "applying");
    run = await master.run({ IMAGING_LB_PEER_WAIT_SECONDS: "0" });
    status = await bed.store.status(prefix, master.node);
    assert.equal(status?.result, "held");
    assert.equal(status?.appliedVersion, v2[master.node].version, "the MASTER keeps the old version");
    assert.match(String(status?.error), /has not applied release/);
    const echo = await bed.lb.topology.exec("client1", "echoscu", ["-aec", "EI_CORE", bed.lb.vips[1], "104"]);
    assert.equal(echo.code, 0, `the MASTER keeps serving: ${echo.stderr}`);
  });
});
