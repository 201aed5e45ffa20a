/**
 * `npm run bench:rollout`: time from upload to applied on each node of an HA pair, and the failed requests
 * during the rollout. The pair runs the product's agent (polling every 10 s, as its timer does) against an
 * S3 emulator (moto: SIMULATED AWS) with real HAProxy, Orthanc and MLLP peers in network namespaces; keepalived's
 * role is SIMULATED by the VIPs on the MASTER (see test/e2e/rollout.e2e.ts). During the rollout, wrk drives
 * HTTPS and a DICOM association sends a C-ECHO every 0.5 s. Targets: 0 failed, 0 cut sessions, both nodes
 * converged within 60 s.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dicomSession, sweepStaleNamespaces, waitForApplied } from "../test/e2e/harness";
import { startRolloutBed, thirdServer } from "../test/e2e/harness/rollout-bed";
import { requireTool } from "../test/helpers/tools";

const POLL_MS = 10_000; // imaging-lb-agent.timer's OnUnitInactiveSec
const ROUNDS = Number(process.env.ROLLOUT_ROUNDS ?? "2");

async function main(): Promise<void> {
  requireTool("wrk", "wrk");
  sweepStaleNamespaces();
  const bed = await startRolloutBed({ pair: true });
  try {
    const [master, backup] = bed.nodes;
    for (const n of bed.nodes) writeFileSync(join(n.root, "bin/keepalived"), '#!/bin/bash\n# SIMULATED keepalived -t\n[ "$1" = -t ] && [ -s "$3" ]\n', { mode: 0o755 });
    const env0 = bed.environment();
    await bed.publish(env0);
    for (const n of [backup, master]) {
      const first = await n.run();
      if (first.code !== 0) throw new Error(`first apply on ${n.node}: ${first.log}`);
    }
    const topo = bed.lb.topology;
    const seconds = 60 * ROUNDS + 30;
    const association = dicomSession(topo, "client1", { host: bed.lb.vips[1], port: 104, calledAet: "EI_CORE", echoes: seconds * 2, pauseMs: 500 });
    const load = topo.exec("client1", "wrk", ["-t1", "-c4", `-d${seconds}s`, "--timeout", "5s", `https://${bed.lb.vips[0]}/system`], { timeoutMs: (seconds + 30) * 1000 });
    // Both agents poll on their own clocks, as on two machines.
    backup.startPolling();
    await new Promise((r) => setTimeout(r, POLL_MS / 2));
    master.startPolling();
    const rows: string[] = [];
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
      rows.push(`round ${round + 1}: BACKUP ${backup.node} applied after ${times[backup.node].toFixed(1)} s, MASTER ${master.node} after ${times[master.node].toFixed(1)} s`);
    }
    await Promise.all([master.stopPolling(), backup.stopPolling()]);
    const [dicom, wrk] = await Promise.all([association, load]);
    const errors = [/Socket errors:.*/.exec(wrk.stdout)?.[0], /Non-2xx or 3xx responses:.*/.exec(wrk.stdout)?.[0]].filter(Boolean);
    console.log("imaging-lb bench:rollout (HA pair, agent polling every 10 s; SIMULATED S3 and VRRP role)");
    for (const row of rows) console.log(`  ${row}`);
    console.log(`  HTTPS during the rollout: ${/(\d+) requests in/.exec(wrk.stdout)?.[1] ?? "?"} requests, failed: ${errors.join("; ") || "0"}`);
    console.log(`  DICOM association: ${dicom.echoesOk}/${seconds * 2} C-ECHOs, ${dicom.error ? `cut: ${dicom.error}` : "never cut"}`);
    console.log("  targets: 0 failed, 0 cut sessions, both nodes converged <= 60 s");
  } finally {
    bed.destroy();
  }
}

main().catch((error: Error) => {
  console.error(`bench:rollout: ${error.message}`);
  process.exitCode = 1;
});
