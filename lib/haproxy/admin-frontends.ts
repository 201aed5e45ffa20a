/**
 * The frontends that are not services: keepalived's loopback health endpoint, the stats page and
 * Prometheus metrics, and with ha.vipMode nlb the NLB's health check on each VIP address. Pure.
 */
import type { ResolvedEnvironment } from "../config/model";
import { ADMIN_CONNECTION_RESERVE, HEALTH_ENDPOINT } from "../config/model";
import { NLB_HEALTH_CHECK } from "../config/nlb-limits";
import { bindAddress } from "../plan/nlb";
import type { FrontendSection, Rule } from "./model";

/** Interface the admin endpoints (stats, /metrics) bind to: the internal side. */
export const ADMIN_INTERFACE = "eth0";

/** Connections the stats and the health front-end each may hold (ADMIN_CONNECTION_RESERVE in all). */
export const ADMIN_FRONTEND_MAXCONN = ADMIN_CONNECTION_RESERVE / 2;
/** keepalived's liveness check of HAProxy, on the loopback. */
export function healthFrontend(): FrontendSection {
  return {
    name: "fe_health",
    description: "Liveness for keepalived: 200 while HAProxy runs, loopback only",
    mode: "http",
    binds: [{ address: HEALTH_ENDPOINT.address, port: HEALTH_ENDPOINT.port }],
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["dontlog-normal"],
    timeouts: { client: "5s", httpRequest: "5s" },
    acls: [],
    tcpRequestConnection: [],
    httpRequest: [],
    httpResponse: [],
    stats: [],
    monitorUri: HEALTH_ENDPOINT.path,
    useBackends: [],
    extra: [],
  };
}

/**
 * vipMode nlb: what the NLB's health checks ask, on each of the node's VIP addresses: 200 while this
 * HAProxy runs and accepts connections there, whatever its servers' state (a dead PACS must not take both
 * nodes out). Only from the client-side subnets, where the NLB's own addresses are.
 */
export function nlbHealthFrontend(env: ResolvedEnvironment, node: string): FrontendSection {
  const subnets = [...new Set(env.vips.flatMap((v) => v.nlb ?? []).map((z) => z.subnet.cidr))].sort();
  return {
    name: "fe_nlb_health",
    description: "The Network Load Balancers' health check: 200 while HAProxy serves on this node's VIP addresses",
    mode: "http",
    binds: env.vips.map((v) => ({ address: bindAddress(v, node), port: NLB_HEALTH_CHECK.port })),
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["dontlog-normal"],
    timeouts: { client: "5s", httpRequest: "5s" },
    acls: [{ name: "nlb_subnets", criterion: `src ${subnets.join(" ")}` }],
    tcpRequestConnection: [{ action: "reject", condition: "unless nlb_subnets" }],
    httpRequest: [],
    httpResponse: [],
    stats: [],
    monitorUri: NLB_HEALTH_CHECK.path,
    useBackends: [],
    extra: [],
  };
}

/** The stats page and /metrics, on the internal side, for the admin networks, with the stats password. */
export function statsFrontend(env: ResolvedEnvironment): FrontendSection {
  const httpRequest: Rule[] = [{ action: "auth realm imaging-lb", condition: "unless { http_auth(admins) }" }];
  if (env.admin.prometheus) httpRequest.push({ action: "use-service prometheus-exporter", condition: "if { path /metrics }" });
  return {
    name: "fe_stats",
    description: "Stats page and Prometheus metrics, admin networks only, authenticated",
    mode: "http",
    binds: [{ address: "", port: env.admin.statsPort, interface: ADMIN_INTERFACE }],
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["httplog"],
    timeouts: { client: "30s", httpRequest: "10s" },
    acls: [{ name: "admin_networks", criterion: `src ${env.access.adminCidrs.join(" ")}` }],
    tcpRequestConnection: [{ action: "reject", condition: "unless admin_networks" }],
    httpRequest,
    httpResponse: [],
    stats: ["enable", "uri /", "refresh 10s", "show-legends"],
    useBackends: [],
    extra: [],
  };
}
