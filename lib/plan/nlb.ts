/**
 * ha.vipMode nlb: both nodes active in two availability zones behind an internal Network Load Balancer
 * per VIP. What the renderers, the loader's checks and the constructs share about it: the NLB's health
 * check of a node (HAProxy itself answering, never the servers), the listeners of each VIP and their idle
 * timeouts, and where HAProxy listens on each node. Pure: imports nothing from cdktf.
 */
import type { ResolvedEnvironment, ResolvedService, ResolvedVip } from "../config/model";
import { durationMs } from "../config/net";

/**
 * The NLB's health check of a node: HTTP GET of HAProxy's own health page on each of the node's VIP
 * addresses. It answers 200 while HAProxy runs and accepts connections there, whatever the state of the
 * servers behind it: a dead PACS must not make both nodes unhealthy. The fastest settings NLB allows for
 * an HTTP check (interval 5 s, timeout 2 s, two failures, two successes).
 */
export const NLB_HEALTH_CHECK = {
  port: 8406,
  path: "/healthz",
  intervalSeconds: 5,
  timeoutSeconds: 2,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  /** HTTP status the check accepts. */
  matcher: "200",
} as const;

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

/** NLB's limits on a TCP listener's idle timeout (`tcp.idle_timeout.seconds`). */
export const NLB_IDLE_TIMEOUT_SECONDS = { min: 60, max: 6000 } as const;
/** Listeners per Network Load Balancer (a fixed AWS quota). */
export const NLB_LISTENERS_PER_LOAD_BALANCER = 50;
/** NLB's limits on a target group's deregistration delay. */
export const NLB_DEREGISTRATION_DELAY_SECONDS = { min: 0, max: 3600 } as const;

/** True when the environment's VIPs are Network Load Balancers. */
export function isNlb(env: Pick<ResolvedEnvironment, "ha">): boolean {
  return env.ha?.vipMode === "nlb";
}

/** The longest time a connection of `s` may stay idle on HAProxy, in seconds (client, server or tunnel timeout). */
export function serviceIdleSeconds(s: Pick<ResolvedService, "timeouts">): number {
  const t = s.timeouts;
  return Math.ceil(Math.max(...[t.client, t.server, t.tunnel].filter((d): d is string => d !== undefined).map(durationMs)) / 1000);
}

/**
 * The idle timeout of a service's NLB listeners: its longest HAProxy idle timeout, so the NLB never forgets
 * a connection HAProxy still keeps, within NLB's 60-6000 s. Above 6000 s the NLB would drop an idle
 * connection first, silently: the service's TCP keep-alives must then run below it (see the loader).
 */
export function listenerIdleSeconds(s: Pick<ResolvedService, "timeouts">): number {
  return Math.min(NLB_IDLE_TIMEOUT_SECONDS.max, Math.max(NLB_IDLE_TIMEOUT_SECONDS.min, serviceIdleSeconds(s)));
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

/** The ports a service listens on: its front-end ports and its HTTP redirect port. */
export function servicePorts(s: Pick<ResolvedService, "frontendPorts" | "tls">): number[] {
  return [...s.frontendPorts, ...(s.tls.redirectHttpPort !== undefined ? [s.tls.redirectHttpPort] : [])];
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
