/**
 * ha.vipMode nlb's facts that the loader checks the file against and the plans build on: AWS's limits of a
 * Network Load Balancer (listeners, idle timeout, deregistration delay), the NLB's health check of a node
 * (its port must stay free), and a service's listener ports and idle times. The listeners and where HAProxy
 * binds are planned in `lib/plan/nlb.ts`. Pure: imports nothing from cdktf.
 */
import type { ResolvedService } from "./model";
import { durationMs } from "./net";

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

/** NLB's limits on a TCP listener's idle timeout (`tcp.idle_timeout.seconds`). */
export const NLB_IDLE_TIMEOUT_SECONDS = { min: 60, max: 6000 } as const;
/** Listeners per Network Load Balancer (a fixed AWS quota). */
export const NLB_LISTENERS_PER_LOAD_BALANCER = 50;
/** vipMode nlb: 2 or 3 nodes, each in its own availability zone (one subnet mapping per node and NLB). */
export const MAX_NLB_NODES = 3;
/** NLB's limits on a target group's deregistration delay. */
export const NLB_DEREGISTRATION_DELAY_SECONDS = { min: 0, max: 3600 } as const;

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

/** The ports a service listens on: its front-end ports and its HTTP redirect port. */
export function servicePorts(s: Pick<ResolvedService, "frontendPorts" | "tls">): number[] {
  return [...s.frontendPorts, ...(s.tls.redirectHttpPort !== undefined ? [s.tls.redirectHttpPort] : [])];
}
