/**
 * `npm run bench:nlb`: what ha.vipMode nlb costs when a node is replaced and when an availability zone is
 * lost, on the multi-AZ bed of the e2e test (test/e2e/harness/nlb-bed.ts): two active nodes running the
 * product's haproxy.cfg, a SIMULATED NLB with the product's health-check interval and thresholds, real
 * Orthanc, DCMTK, curl and MLLP peers. Prints the replacement's timeline, failed requests and cut sessions,
 * the AZ loss's detection time, cut sessions and time until every client is served again, each target
 * met or NOT met (exit 1 when one is not).
 *
 *   NLB_BENCH_DRAIN=20s npm run bench:nlb     # the drill's drain time (default 15s; the product's default is 300s)
 */
import { sweepStaleNamespaces } from "../test/e2e/harness/netns";
import { buildNlbBed } from "../test/e2e/harness/nlb-bed";
import { azLossDrill, replacementDrill } from "../test/e2e/harness/nlb-drills";
import { NLB_HEALTH_CHECK } from "../lib/config/nlb-limits";

const DRAIN = process.env.NLB_BENCH_DRAIN ?? "15s";
const AZ_LOSS_GOAL_MS = 15_000;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  sweepStaleNamespaces();
  const bed = await buildNlbBed({ drainTime: DRAIN });
  const targets: Array<[string, boolean]> = [];
  try {
    const h = NLB_HEALTH_CHECK;
    console.log(`imaging-lb bench:nlb (two active nodes in two zones behind a SIMULATED NLB: HTTP :${h.port}${h.path} every ${h.intervalSeconds} s, timeout ${h.timeoutSeconds} s, ${h.unhealthyThreshold} failures / ${h.healthyThreshold} passes)`);

    const r = await replacementDrill(bed, "lb-a");
    const rFailed = r.loops.reduce((n, l) => n + l.failedAfter + l.failedInFlight.length + l.failedBefore, 0);
    const rCut = r.sessions.filter((x) => !x.ok).length;
    console.log(`  node replacement (generation raise) of lb-a, drain ${r.drainSeconds} s, cross-zone on:`);
    console.log(`    timeline after the deregistration: drain ended ${s(r.timeline.drainEnded)}, machine gone ${s(r.timeline.machineGone)}, new machine serving ${s(r.timeline.newMachineServing)} (boot not simulated), registered ${s(r.timeline.registered)}, healthy ${s(r.timeline.healthy)}`);
    console.log(`    long sessions on lb-a at the deregistration: ${r.onNodeAtDeregistration.dicom} DICOM associations, ${r.onNodeAtDeregistration.hl7} HL7 links; open when its machine went: ${r.openAtTermination.dicom + r.openAtTermination.hl7}`);
    for (const l of r.loops) console.log(`    ${l.loop}: ${l.requests} requests, ${l.failedAfter + l.failedInFlight.length + l.failedBefore} failed`);
    console.log(`    sessions: ${r.sessions.length} long DICOM associations and HL7 links, ${rCut} cut; the new machine took ${r.newMachineConnections} connections once healthy; stick tables resynced: ${r.stickTableResynced}`);
    targets.push([`replacement: 0 failed requests (${rFailed})`, rFailed === 0], [`replacement: 0 cut DICOM associations and HL7 links (${rCut})`, rCut === 0]);

    const z = await azLossDrill(bed, "a");
    const lostCut = z.sessionsOnLostNode.filter((x) => !x.ok).length;
    const keptCut = z.sessionsOnOtherNode.filter((x) => !x.ok).length;
    console.log("  AZ loss (zone a: node, subnets and NLB addresses dark at once), cross-zone off:");
    console.log(`    NLB marked lb-a unhealthy after ${s(z.detectionMs)} (the health check allows ${s(z.detectionBoundMs.best)}-${s(z.detectionBoundMs.worst)})`);
    for (const l of z.loops) console.log(`    ${l.loop}: ${l.requests} requests, ${l.failedAfter} failed after the loss (served again after ${s(l.servedAgainMs)}), ${l.failedInFlight.length} in flight on the lost node cut`);
    console.log(`    sessions cut: ${lostCut} of ${z.sessionsOnLostNode.length} on the lost node, ${keptCut} of ${z.sessionsOnOtherNode.length} on the other`);
    console.log(`    every client served again after ${s(z.everyClientServedAgainMs)}; longest error window of new connections ${s(z.longestErrorWindowMs)}`);
    console.log("    (clients use the NLB's DNS name, answered without TTL here; on AWS a client that caches it and never tries the second address can wait up to the record's 60 s more)");
    targets.push(
      [`AZ loss: cut sessions only on the lost node (${keptCut} on the other)`, keptCut === 0],
      [`AZ loss: every client served again <= ${s(AZ_LOSS_GOAL_MS)} (${s(z.everyClientServedAgainMs)})`, z.everyClientServedAgainMs <= AZ_LOSS_GOAL_MS],
      [`AZ loss: errors of new connections <= ${s(AZ_LOSS_GOAL_MS)} (${s(z.longestErrorWindowMs)})`, z.longestErrorWindowMs <= AZ_LOSS_GOAL_MS],
    );
    for (const [what, ok] of targets) console.log(`  target: ${what}: ${verdict(ok)}`);
  } finally {
    await bed.destroy();
  }
  if (targets.some(([, ok]) => !ok)) process.exitCode = 1;
}

main().catch((error: Error) => {
  console.error(`bench:nlb: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
