/**
 * ha.vipMode nlb: every node (two or three) active in its own availability zone behind an internal Network Load Balancer
 * per VIP. What the renderers and the constructs share about it: how fast the NLB's health check of a node
 * (`lib/config/nlb-limits.ts`: HAProxy itself answering, never the servers) sees it gone, the listeners of
 * each VIP and their idle timeouts, and where HAProxy listens on each node. Pure: imports nothing from cdktf.
 */
import type { ResolvedEnvironment, ResolvedVip } from "../config/model";
import { NLB_HEALTH_CHECK, listenerIdleSeconds, servicePorts } from "../config/nlb-limits";

/**
 * How long the NLB takes to stop sending new connections to a node that stopped answering, in seconds:
 * the first failing check starts up to one interval after the failure, `unhealthyThreshold` checks must
 * fail one interval apart, and the last takes up to its timeout to fail (a dark node never answers).
 */
export function nlbDetectionSeconds(): { readonly best: number; readonly worst: number } {
  const h = NLB_HEALTH_CHECK;
  const base = (h.unhealthyThreshold - 1) * h.intervalSeconds + h.timeoutSeconds;
  return { best: base, worst: base + h.intervalSeconds };
}

/** True when the environment's VIPs are Network Load Balancers. */
export function isNlb(env: Pick<ResolvedEnvironment, "ha">): boolean {
  return env.ha?.vipMode === "nlb";
}

/** The nodes' count in words, for summaries: two or three (vipMode nlb takes two or three). */
export function nodeCountWord(count: number): string {
  return ["none", "one", "two", "three"][count] ?? String(count);
}

/**
 * The environment's shape in a few words: "single load balancer", "HA pair", "HA pair behind NLBs (two
 * zones)" or "three nodes behind NLBs (three zones)".
 */
export function haShape(env: Pick<ResolvedEnvironment, "ha" | "nodes">): string {
  const n = env.nodes.length;
  if (n < 2) return "single load balancer";
  if (!isNlb(env)) return "HA pair";
  return n === 2 ? "HA pair behind NLBs (two zones)" : `${nodeCountWord(n)} nodes behind NLBs (${nodeCountWord(n)} zones)`;
}

/** One listener (and its target group) of a VIP's NLB. */
export interface NlbListener {
  readonly vip: string;
  readonly port: number;
  /** The service that listens on the port. */
  readonly service: string;
  /** `tcp.idle_timeout.seconds`. */
  readonly idleTimeoutSeconds: number;
}

/** The listeners of every VIP's NLB, by VIP name then port. */
export function nlbListeners(env: Pick<ResolvedEnvironment, "vips" | "services">): NlbListener[] {
  const out: NlbListener[] = [];
  for (const vip of env.vips) {
    for (const s of env.services.filter((x) => x.vip.name === vip.name)) {
      for (const port of servicePorts(s)) out.push({ vip: vip.name, port, service: s.name, idleTimeoutSeconds: listenerIdleSeconds(s) });
    }
  }
  return out.sort((a, b) => a.vip.localeCompare(b.vip) || a.port - b.port);
}

/**
 * Where HAProxy listens for a VIP on `node`: the VIP's address, or with nlb the VIP's address on that node
 * (the NLB's target). Without a node (a single load balancer or a VRRP pair) the VIP's address.
 */
export function bindAddress(vip: ResolvedVip, node?: string): string {
  if (!vip.nlb) return vip.address;
  const zone = vip.nlb.find((z) => z.node === node);
  if (!zone) throw new Error(`VIP '${vip.name}' is behind an NLB: name the node to render for (one of ${vip.nlb.map((z) => z.node).join(", ")})`);
  return zone.target;
}

/** The VIP addresses of `node` (its NLB targets), empty unless nlb. */
export function nodeVipTargets(env: Pick<ResolvedEnvironment, "vips">, node: string): string[] {
  return env.vips.flatMap((v) => v.nlb?.filter((z) => z.node === node).map((z) => z.target) ?? []);
}
