/**
 * The two drills of ha.vipMode nlb on the multi-AZ bed (`nlb-bed.ts`), as functions that return figures:
 * the e2e test asserts them, `npm run bench:nlb` prints them with their targets.
 *
 * - **Node replacement** (a generation raise, the sequence the stack runs): the node's targets are
 *   deregistered, the deploy waits `drainTime` while the node finishes its connections, the machine goes
 *   (HAProxy killed: what is still open is cut), a new one starts on the same addresses, its targets are
 *   registered and the NLB sends it connections once its health checks pass. Run with cross-zone on, the
 *   setting for clients that use one zone's fixed address (with it off they have no node for that time).
 * - **AZ loss**: under load, one zone's node, subnets and NLB addresses go dark at once (packets dropped,
 *   no reset: a power cut). Cross-zone off (the default).
 */
import { nlbDetectionSeconds } from "../../../lib/plan/nlb";
import {
  currentSessions,
  loopFigures,
  longAssociation,
  longLink,
  startLoad,
  ZONES,
  type LoadLoop,
  type LongSession,
  type LoopFigures,
  type NlbBed,
  type ZoneName,
} from "./nlb-bed";
import { delay, pollUntil } from "./wait";

/** A long session's outcome. */
export interface SessionFigures {
  readonly kind: LongSession["kind"];
  readonly via: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly durationMs: number;
}

async function settle(sessions: readonly LongSession[]): Promise<SessionFigures[]> {
  return Promise.all(sessions.map(async (s) => ({ kind: s.kind, via: s.address, ...(await s.result) })));
}

/** The long sessions a node carries now, per kind (HAProxy's current sessions of the DICOM and HL7 frontends). */
async function carried(bed: NlbBed, node: string): Promise<{ dicom: number; hl7: number }> {
  const n = bed.nodes[node];
  return { dicom: await currentSessions(n, "fe_dicom"), hl7: await currentSessions(n, "fe_hl7") };
}

/** Figures of the node-replacement drill. */
export interface ReplacementFigures {
  readonly node: string;
  readonly drainSeconds: number;
  /** Milliseconds from the deregistration. */
  readonly timeline: {
    readonly drainEnded: number;
    readonly machineGone: number;
    readonly newMachineServing: number;
    readonly registered: number;
    readonly healthy: number;
  };
  /** Long sessions the replaced node carried when its targets left the NLB. */
  readonly onNodeAtDeregistration: { readonly dicom: number; readonly hl7: number };
  /** Long sessions still open on the node when its machine went (cut). */
  readonly openAtTermination: { readonly dicom: number; readonly hl7: number };
  readonly sessions: readonly SessionFigures[];
  readonly loops: readonly LoopFigures[];
  /** New connections the new machine took once registered and healthy. */
  readonly newMachineConnections: number;
  /** The HL7 active-backup entry on the new machine, synced from its peer, names the peer's server. */
  readonly stickTableResynced: boolean;
}

/** Runs the node-replacement drill on `node` (see the file's header). */
export async function replacementDrill(bed: NlbBed, node = "lb-a"): Promise<ReplacementFigures> {
  const drainSeconds = bed.env.ha?.nlb?.drainSeconds ?? 0;
  const zone = bed.nodes[node].zone;
  await bed.nlb.setCrossZone(true);
  // Long sessions through the replaced node's zone address, before the load: the NLB alternates new
  // connections over the zone's targets, so half of them land on the node being replaced. Each lasts
  // about 12 s, well within the drain.
  const address = (vip: "core") => ZONES[zone][vip].nlb;
  const sessions: LongSession[] = [];
  for (let i = 0; i < 4; i++) {
    sessions.push(longAssociation(bed, "client4", address("core"), 30, 400));
    await delay(150);
    sessions.push(longLink(bed, "client4", address("core"), 40, 300, `replace-${i}`));
    await delay(150);
  }
  await delay(1000);
  const onNode = await carried(bed, node);
  const loops: LoadLoop[] = [
    startLoad(bed, "client1", "dicom", "dns"),
    startLoad(bed, "client1", "https", "dns"),
    startLoad(bed, "client2", "hl7", "dns"),
    startLoad(bed, "client3", "dicom", zone),
    startLoad(bed, "client3", "https", zone),
  ];
  await delay(2000);

  const t0 = Date.now();
  await bed.nlb.deregister(node);
  await delay(drainSeconds * 1000);
  const drainEnded = Date.now();
  const open = await carried(bed, node);
  const old = bed.nodes[node].haproxy.haproxy.process;
  old.signal("SIGKILL");
  await old.exited;
  const machineGone = Date.now();
  const fresh = await bed.startNode(node);
  for (const backend of ["be_xero-xtend", "be_dicom"]) for (const server of ["ei-core-1", "ei-core-2", "ei-core-3"]) await fresh.waitForStatus(backend, server, "UP", 20_000);
  const newMachineServing = Date.now();
  await bed.nlb.register(node);
  const registered = Date.now();
  const healthy = await pollUntil(`the NLB to see the new ${node} healthy`, () => bed.nlb.eventTime(node, "healthy", registered), { timeoutMs: 30_000, intervalMs: 100 });
  const before = Number((await fresh.stat()).find((r) => r.pxname === "fe_dicom" && r.svname === "FRONTEND")?.stot ?? 0);
  await delay(3000);
  for (const loop of loops) await loop.stop();
  const after = (await fresh.stat()).filter((r) => r.svname === "FRONTEND" && /^fe_(dicom|hl7|xero-xtend)$/.test(r.pxname)).reduce((n, r) => n + Number(r.stot ?? 0), 0);
  const settled = await settle(sessions);
  const peer = Object.values(bed.nodes).find((n) => n.name !== node)!;
  const entry = async (p: typeof peer) => /key=1 .*server_id=(\d+)/.exec(await p.haproxy.runtime("show table be_hl7"))?.[1];
  const stickTableResynced = await pollUntil("the new machine's be_hl7 stick table to be synced from its peer", async () => {
    const [mine, theirs] = [await entry(bed.nodes[node]), await entry(peer)];
    return mine !== undefined && mine === theirs;
  }, { timeoutMs: 5000, intervalMs: 200 }).catch(() => false);
  await bed.nlb.setCrossZone(bed.env.ha?.nlb?.crossZone ?? false);
  return {
    node,
    drainSeconds,
    timeline: { drainEnded: drainEnded - t0, machineGone: machineGone - t0, newMachineServing: newMachineServing - t0, registered: registered - t0, healthy: healthy - t0 },
    onNodeAtDeregistration: onNode,
    openAtTermination: open,
    sessions: settled,
    loops: loops.map((l) => loopFigures(l, t0)),
    newMachineConnections: after - before,
    stickTableResynced,
  };
}

/** Figures of the AZ-loss drill. */
export interface AzLossFigures {
  readonly zone: ZoneName;
  /** From the zone going dark to the NLB marking its node unhealthy in every target group. */
  readonly detectionMs: number;
  readonly detectionBoundMs: { readonly best: number; readonly worst: number };
  readonly sessionsOnLostNode: readonly SessionFigures[];
  readonly sessionsOnOtherNode: readonly SessionFigures[];
  readonly loops: readonly LoopFigures[];
  /** The longest time a client (every loop) waited to be served again: the goal's "every client served again". */
  readonly everyClientServedAgainMs: number;
  /** The longest error window of new connections of any loop. */
  readonly longestErrorWindowMs: number;
}

/** Runs the AZ-loss drill: `zone` goes dark under load (see the file's header). */
export async function azLossDrill(bed: NlbBed, zone: ZoneName = "a"): Promise<AzLossFigures> {
  await bed.nlb.setCrossZone(false);
  const other: ZoneName = zone === "a" ? "b" : "a";
  // Long sessions on each node (cross-zone off: a zone's address reaches its own node), ~20 s each.
  const lost: LongSession[] = [];
  const kept: LongSession[] = [];
  for (const [list, z] of [[lost, zone], [kept, other]] as const) {
    for (let i = 0; i < 2; i++) {
      list.push(longAssociation(bed, "client4", ZONES[z].core.nlb, 50, 400));
      list.push(longLink(bed, "client4", ZONES[z].core.nlb, 60, 330, `az-${z}-${i}`));
    }
  }
  await delay(1000);
  const loops: LoadLoop[] = [
    startLoad(bed, "client1", "dicom", "dns"),
    startLoad(bed, "client1", "https", "dns"),
    startLoad(bed, "client2", "hl7", "dns"),
    startLoad(bed, "client3", "dicom", other),
    startLoad(bed, "client3", "https", other),
  ];
  await delay(2500);
  const t0 = Date.now();
  await bed.zoneDark(zone);
  const lostNode = ZONES[zone].node;
  const detected = await pollUntil(`the NLB to mark ${lostNode} unhealthy`, () => bed.nlb.eventTime(lostNode, "unhealthy", t0), { timeoutMs: 30_000, intervalMs: 100 });
  // Then every client loop served again, and a few more seconds of load.
  await pollUntil(
    "every client loop to succeed again after the loss",
    () => loops.every((l) => l.outcomes.some((o) => o.started > detected && o.ok)),
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  await delay(3000);
  for (const loop of loops) await loop.stop();
  const figures = loops.map((l) => loopFigures(l, t0));
  const bound = nlbDetectionSeconds();
  return {
    zone,
    detectionMs: detected - t0,
    detectionBoundMs: { best: bound.best * 1000, worst: bound.worst * 1000 },
    sessionsOnLostNode: await settle(lost),
    sessionsOnOtherNode: await settle(kept),
    loops: figures,
    everyClientServedAgainMs: Math.max(...figures.map((f) => f.servedAgainMs)),
    longestErrorWindowMs: Math.max(...figures.map((f) => f.errorWindowMs)),
  };
}
