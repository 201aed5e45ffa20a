/**
 * `npm run bench:rollout`: time from upload to applied on each node of an HA pair, the failed requests and cut
 * sessions during the rollout, and what the agent costs: its CPU per hour while idle (the steady state: a poll
 * every 5 s) and while rolling out. The pair runs the product's agent as the service runs it (one long-lived
 * process per node) against an S3/KMS/Secrets Manager emulator (moto: SIMULATED AWS) with real HAProxy,
 * Orthanc and MLLP peers in network namespaces; keepalived's role is SIMULATED by the VIPs on the MASTER (see
 * test/e2e/rollout.e2e.ts). During the rollout, wrk drives HTTPS and a DICOM association sends a C-ECHO every
 * 0.5 s. Each target is reported met or NOT met; the exit code is 1 when one is not.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dicomSession, sweepStaleNamespaces, waitForApplied } from "../test/e2e/harness";
import { startRolloutBed, thirdServer } from "../test/e2e/harness/rollout-bed";
import type { AgentNode } from "../test/e2e/harness/agent-node";
import { requireTool } from "../test/helpers/tools";
import { NODE_CONTRACT } from "../lib/contract/node-contract";

const ROUNDS = Number(process.env.ROLLOUT_ROUNDS ?? "2");
const IDLE_SECONDS = Number(process.env.ROLLOUT_IDLE_SECONDS ?? "120");
const TARGET_CONVERGE_SECONDS = 60;
const TARGET_CPU_PERCENT = 1;
const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds the process and its waited-for children used so far (/proc/<pid>/stat utime+stime+cutime+cstime). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ": state is field 3, so utime (14) .. cstime (17) are indexes 11..14 here.
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) / CLOCK_TICKS;
}

const cpuOf = (nodes: readonly AgentNode[]) => nodes.map((n) => cpuSeconds(n.agentPid()!));
const perHour = (seconds: number, window: number) => (seconds * 3600) / window;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");

async function main(): Promise<void> {
  requireTool("wrk", "wrk");
  sweepStaleNamespaces();
  const bed = await startRolloutBed({ pair: true });
  const failures: string[] = [];
  try {
    const [master, backup] = bed.nodes;
    for (const n of bed.nodes) writeFileSync(join(n.root, "bin/keepalived"), '#!/bin/bash\n# SIMULATED keepalived -t\n[ "$1" = -t ] && [ -s "$3" ]\n', { mode: 0o755 });
    const env0 = bed.environment();
    await bed.publish(env0);
    for (const n of [backup, master]) {
      const first = await n.run();
      if (first.code !== 0) throw new Error(`first apply on ${n.node}: ${first.log}`);
    }
    // Both agents run as the service runs them, on their own clocks, as on two machines.
    backup.startPolling();
    await new Promise((r) => setTimeout(r, 2500));
    master.startPolling();
    await new Promise((r) => setTimeout(r, 5000));

    // Idle: what a node pays every hour for being ready.
    const idleStart = cpuOf(bed.nodes);
    const idleBegan = new Date();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idle = cpuOf(bed.nodes).map((c, i) => perHour(c - idleStart[i], IDLE_SECONDS));
    // The idle figure includes the metrics (monitoring is on by default: one PutMetricData a minute per node):
    // how many sends moto received from each node in the window (HaproxyServing is in every send).
    const sends = await Promise.all(
      bed.nodes.map(async (n) => {
        const out = await bed.store.aws([
          "cloudwatch", "get-metric-statistics", "--namespace", NODE_CONTRACT.metrics.namespace, "--metric-name", "HaproxyServing",
          "--dimensions", `Name=Environment,Value=${env0.name}`, `Name=Node,Value=${n.node}`,
          "--start-time", idleBegan.toISOString(), "--end-time", new Date().toISOString(), "--period", "60", "--statistics", "SampleCount",
        ]);
        return (JSON.parse(out) as { Datapoints: Array<{ SampleCount: number }> }).Datapoints.reduce((sum, p) => sum + p.SampleCount, 0);
      }),
    );

    const topo = bed.lb.topology;
    const seconds = 60 * ROUNDS + 30;
    const association = dicomSession(topo, "client1", { host: bed.lb.vips[1], port: 104, calledAet: "EI_CORE", echoes: seconds * 2, pauseMs: 500 });
    const load = topo.exec("client1", "wrk", ["-t1", "-c4", `-d${seconds}s`, "--timeout", "5s", `https://${bed.lb.vips[0]}/system`], { timeoutMs: (seconds + 30) * 1000 });
    const rows: string[] = [];
    let slowest = 0;
    const rolloutStart = cpuOf(bed.nodes);
    const rolloutBegan = Date.now();
    for (let round = 0; round < ROUNDS; round++) {
      const env = bed.environment(round % 2 === 0 ? thirdServer(bed.lb) : { services: { dicom: { timeouts: { client: `${2 + round}h`, server: `${2 + round}h` } } } });
      const bundles = await bed.publish(env);
      const uploaded = bed.publishedAt; // when the manifests began to upload: no node can see the version earlier
      const times: Record<string, number> = {};
      await Promise.all(
        bed.nodes.map(async (n) => {
          const status = await waitForApplied(bed.store, env.configStore.prefix, n.node, bundles[n.node].version, 180_000);
          // The node's own appliedAt (whole seconds), not when this process saw the status.
          times[n.node] = (Date.parse(String(status.appliedAt)) - uploaded) / 1000;
        }),
      );
      slowest = Math.max(slowest, ...Object.values(times));
      rows.push(`round ${round + 1}: BACKUP ${backup.node} applied after ${times[backup.node].toFixed(1)} s, MASTER ${master.node} after ${times[master.node].toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, 10_000));
    }
    const rolloutWindow = (Date.now() - rolloutBegan) / 1000;
    const rollout = cpuOf(bed.nodes).map((c, i) => c - rolloutStart[i]);
    await Promise.all([master.stopPolling(), backup.stopPolling()]);
    const [dicom, wrk] = await Promise.all([association, load]);
    const errors = [/Socket errors:.*/.exec(wrk.stdout)?.[0], /Non-2xx or 3xx responses:.*/.exec(wrk.stdout)?.[0]].filter(Boolean);
    const idlePercent = Math.max(...idle) / 36; // CPU seconds per hour → % of one vCPU
    console.log("imaging-lb bench:rollout (HA pair, the agent as a long-lived process polling every 5 s; SIMULATED S3, KMS and VRRP role)");
    for (const row of rows) console.log(`  ${row}`);
    console.log(`  HTTPS during the rollout: ${/(\d+) requests in/.exec(wrk.stdout)?.[1] ?? "?"} requests, failed: ${errors.join("; ") || "0"}`);
    console.log(`  DICOM association: ${dicom.echoesOk}/${seconds * 2} C-ECHOs, ${dicom.error ? `cut: ${dicom.error}` : "never cut"}`);
    console.log(`  agent CPU, idle (${IDLE_SECONDS} s measured): ${bed.nodes.map((n, i) => `${n.node} ${idle[i].toFixed(1)} s/h`).join(", ")} = ${idlePercent.toFixed(3)} % of one vCPU at most`);
    console.log(`  metrics sent to CloudWatch in that window (included in the idle CPU): ${bed.nodes.map((n, i) => `${n.node} ${sends[i]} PutMetricData`).join(", ")}`);
    console.log(`  agent CPU, rollout (${ROUNDS} rounds, ${rolloutWindow.toFixed(0)} s): ${bed.nodes.map((n, i) => `${n.node} ${rollout[i].toFixed(1)} s`).join(", ")} (haproxy -c, keepalived -t and the reloads included)`);
    const targets: Array<[string, boolean]> = [
      ["0 failed HTTPS requests", errors.length === 0],
      ["0 cut DICOM associations", dicom.error === undefined && dicom.echoesOk === seconds * 2],
      [`both nodes converged <= ${TARGET_CONVERGE_SECONDS} s after the upload (slowest ${slowest.toFixed(1)} s)`, slowest <= TARGET_CONVERGE_SECONDS],
      [`the agent idles below ${TARGET_CPU_PERCENT} % of one vCPU (${idlePercent.toFixed(3)} %)`, idlePercent < TARGET_CPU_PERCENT],
      [`every node sent its metrics during the idle window (${sends.join(", ")} sends)`, sends.every((n) => n >= Math.floor(IDLE_SECONDS / 60) - 1 && n > 0)],
    ];
    for (const [what, ok] of targets) {
      console.log(`  target: ${what}: ${verdict(ok)}`);
      if (!ok) failures.push(what);
    }
  } finally {
    bed.destroy();
  }
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: Error) => {
  console.error(`bench:rollout: ${error.message}`);
  process.exitCode = 1;
});
