/**
 * The drawing's content, independent of the output format: what the Mermaid and SVG renderers show,
 * derived once from the resolved environment. Pure data; every list keeps the environment's order
 * (sorted by the user's names), so the drawings are deterministic.
 */
import { cidrContains } from "../config/net";
import { ResolvedEnvironment, ResolvedService, ResolvedSubnet, VipMode } from "../config/model";
import { egressPlan } from "../plan/egress";

/** A subnet drawn as a group. */
export interface DiagramSubnet {
  /** `subnet` (one-arm), `external` or `internal` (two-arm); `<node>-internal` / `<node>-external` for a node's own. */
  readonly key: string;
  /** Heading, e.g. `external subnet (eth1)`, or `lb-b internal subnet (eth0)` for a node's own. */
  readonly label: string;
  readonly cidr: string;
  readonly availabilityZone: string;
}

/** One service line inside a VIP box. */
export interface DiagramServiceLine {
  readonly name: string;
  readonly mode: "http" | "tcp";
  /** Every port the VIP listens on for this service (front-end ports, then the redirect port). */
  readonly ports: readonly number[];
  /** e.g. `443 → 80, 80 redirect` or `104, 110`. */
  readonly portText: string;
  /** Extra lines: content-switching routes (`/xtend/ → 8080`). */
  readonly routes: readonly string[];
}

/** A VIP with the services it carries. */
export interface DiagramVip {
  readonly name: string;
  readonly address: string;
  readonly elasticIp: boolean;
  readonly services: readonly DiagramServiceLine[];
  /** ha.vipMode nlb: the VIP is an internal NLB; per node (zone), its fixed address and the node's target. */
  readonly nlb?: ReadonlyArray<{ readonly node: string; readonly availabilityZone: string; readonly address: string; readonly target: string }>;
}

/** A network interface of a node. */
export interface DiagramInterface {
  readonly device: "eth0" | "eth1";
  readonly address: string;
}

/** A load balancer node. */
export interface DiagramNode {
  readonly name: string;
  readonly role: "primary" | "secondary";
  /** The interface carrying the VIPs: eth1 in two-arm, eth0 in one-arm. */
  readonly clientInterface: DiagramInterface;
  /** The interface towards the servers: eth0. */
  readonly serverInterface: DiagramInterface;
  /** The subnets of its interfaces: client side (eth1, or eth0 in one-arm) and server side (eth0). */
  readonly clientSubnet: DiagramSubnet;
  readonly serverSubnet: DiagramSubnet;
}

/** A real server. */
export interface DiagramServer {
  readonly name: string;
  readonly address: string;
  readonly aeTitle?: string;
  /** Services it serves (names), in service order. */
  readonly services: readonly string[];
  /** Services for which it is a backup server. */
  readonly backupFor: readonly string[];
  /** Whether its address lies in a load balancer node's server-side subnet (else it is reached through a router). */
  readonly onServerSubnet: boolean;
  /** The server-side subnet holding it, when it is on one. */
  readonly subnet?: DiagramSubnet;
}

/** How the nodes reach package mirrors and AWS APIs at boot. */
export type DiagramEgress =
  | { readonly kind: "nat"; readonly subnet: DiagramSubnet }
  | { readonly kind: "adopted" }
  /** A baked image without an internet path: the AWS APIs through VPC endpoints only. */
  | { readonly kind: "endpoints"; readonly services: readonly string[] };

/** Everything a drawing shows. */
export interface DiagramTopology {
  readonly name: string;
  readonly region: string;
  readonly layout: "one-arm" | "two-arm";
  /** e.g. `two-arm, HA pair (secondary-ip), eu-west-1`. */
  readonly summary: string;
  readonly clientCidrs: readonly string[];
  /** one-arm: [subnet]; two-arm: [external, internal]. */
  readonly subnets: readonly DiagramSubnet[];
  readonly vips: readonly DiagramVip[];
  /** Primary first. */
  readonly nodes: readonly DiagramNode[];
  readonly ha?: { readonly vipMode: VipMode; readonly virtualRouterId: number; readonly routeTableIds: readonly string[] };
  readonly servers: readonly DiagramServer[];
  /** The nodes sit in different subnets (an HA pair across availability zones, route-table mode). */
  readonly crossAz: boolean;
  /** Route-table mode: the VIPs are overlay addresses outside the VPC CIDR, in no subnet. */
  readonly overlayVips: boolean;
  /** nlb mode: the VIPs are Network Load Balancers in front of both (active) nodes, no VRRP. */
  readonly nlb?: { readonly crossZone: boolean; readonly drainSeconds: number };
  readonly vpcCidr?: string;
  readonly egress: DiagramEgress;
  /** The stats page and /metrics: port on eth0 and the admin networks allowed to it. */
  readonly stats: { readonly port: number; readonly adminCidrs: readonly string[]; readonly prometheus: boolean };
}

/** `443 → 80, 80 redirect`: the ports a service listens on, with port translation and the HTTP redirect. */
export function servicePortText(service: ResolvedService): string {
  const listen = service.frontendPorts.join(", ");
  const parts = [service.backendPort === undefined ? listen : `${listen} → ${service.backendPort}`];
  if (service.tls.redirectHttpPort !== undefined) parts.push(`${service.tls.redirectHttpPort} redirect`);
  return parts.join(", ");
}

function serviceLine(service: ResolvedService): DiagramServiceLine {
  const ports = [...service.frontendPorts, ...(service.tls.redirectHttpPort === undefined ? [] : [service.tls.redirectHttpPort])];
  const routes = service.routes.map((r) => {
    const port = r.members.find((m) => m.port !== undefined)?.port;
    return `${r.pathPrefixes.join(" ")}${port === undefined ? "" : ` → ${port}`}`;
  });
  return { name: service.name, mode: service.mode, ports, portText: servicePortText(service), routes };
}

/** Builds the drawing's content from a resolved environment. */
export function diagramTopology(env: ResolvedEnvironment): DiagramTopology {
  const net = env.network;
  let subnets: DiagramSubnet[];
  switch (net.layout) {
    case "one-arm":
      subnets = [{ key: "subnet", label: "subnet (eth0)", cidr: net.subnet.cidr, availabilityZone: net.subnet.availabilityZone }];
      break;
    case "two-arm":
      subnets = [
        { key: "external", label: "external subnet (eth1)", cidr: net.external.cidr, availabilityZone: net.external.availabilityZone },
        { key: "internal", label: "internal subnet (eth0)", cidr: net.internal.cidr, availabilityZone: net.internal.availabilityZone },
      ];
      break;
  }

  const own = (sub: ResolvedSubnet, node: string, side: "internal" | "external"): DiagramSubnet => {
    const shared = subnets.find((x) => x.cidr === sub.cidr);
    if (shared) return shared;
    const device = side === "external" ? "eth1" : "eth0";
    const label = net.layout === "one-arm" ? `${node} subnet (eth0)` : `${node} ${side} subnet (${device})`;
    return { key: `${node}-${side}`, label, cidr: sub.cidr, availabilityZone: sub.availabilityZone };
  };
  const nodes: DiagramNode[] = env.nodes.map((n) => {
    const eth0: DiagramInterface = { device: "eth0", address: n.internalAddress };
    const client: DiagramInterface = net.layout === "two-arm" && n.externalAddress !== undefined ? { device: "eth1", address: n.externalAddress } : eth0;
    const serverSubnet = own(n.internalSubnet, n.name, "internal");
    const clientSubnet = net.layout === "two-arm" && n.externalSubnet ? own(n.externalSubnet, n.name, "external") : serverSubnet;
    return { name: n.name, role: n.role, clientInterface: client, serverInterface: eth0, clientSubnet, serverSubnet };
  });
  const crossAz = nodes.some((n) => !subnets.includes(n.serverSubnet) || !subnets.includes(n.clientSubnet));

  const vips: DiagramVip[] = env.vips.map((v) => ({
    name: v.name,
    address: v.address,
    elasticIp: v.elasticIp,
    services: env.services.filter((s) => s.vip.name === v.name).map(serviceLine),
    ...(v.nlb ? { nlb: v.nlb.map((z) => ({ node: z.node, availabilityZone: z.subnet.availabilityZone, address: z.address, target: z.target })) } : {}),
  }));

  const serverSubnets = [...new Set(nodes.map((n) => n.serverSubnet))];
  const serverNames = new Map<string, { address: string; aeTitle?: string; services: string[]; backupFor: string[] }>();
  for (const s of env.services) {
    const members = [...s.members, ...s.routes.flatMap((r) => r.members)];
    for (const m of members) {
      const entry = serverNames.get(m.name) ?? { address: m.address, aeTitle: m.aeTitle, services: [], backupFor: [] };
      if (!entry.services.includes(s.name)) entry.services.push(s.name);
      if (m.backup && !entry.backupFor.includes(s.name)) entry.backupFor.push(s.name);
      serverNames.set(m.name, entry);
    }
  }
  const servers: DiagramServer[] = [...serverNames.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, s]) => ({
      name,
      address: s.address,
      ...(s.aeTitle === undefined ? {} : { aeTitle: s.aeTitle }),
      services: s.services,
      backupFor: s.backupFor,
      onServerSubnet: serverSubnets.some((sub) => cidrContains(sub.cidr, s.address)),
      ...(serverSubnets.some((sub) => cidrContains(sub.cidr, s.address)) ? { subnet: serverSubnets.find((sub) => cidrContains(sub.cidr, s.address)) } : {}),
    }));

  const pair = env.nodes.length >= 2; // a pair, or two or three nodes behind NLBs
  const count = env.nodes.length === 3 ? "three" : "two";
  const shape = pair
    ? env.ha?.vipMode === "nlb"
      ? `${count} active nodes in ${count} zones behind NLBs (nlb)`
      : `HA pair (${env.ha?.vipMode ?? "secondary-ip"})`
    : "single load balancer";
  return {
    name: env.name,
    region: env.region,
    layout: net.layout,
    summary: `${net.layout}, ${shape}, ${env.region}`,
    clientCidrs: env.access.clientCidrs,
    subnets,
    vips,
    nodes,
    ...(pair ? { ha: { vipMode: env.ha?.vipMode ?? "secondary-ip", virtualRouterId: env.ha?.virtualRouterId ?? 51, routeTableIds: env.ha?.routeTableIds ?? [] } } : {}),
    servers,
    crossAz,
    overlayVips: env.ha?.vipMode === "route-table",
    ...(env.ha?.vipMode === "nlb" && env.ha.nlb ? { nlb: { crossZone: env.ha.nlb.crossZone, drainSeconds: env.ha.nlb.drainSeconds } } : {}),
    ...(net.vpcCidr ? { vpcCidr: net.vpcCidr } : {}),
    egress: diagramEgress(env),
    stats: { port: env.admin.statsPort, adminCidrs: env.access.adminCidrs, prometheus: env.admin.prometheus },
  };
}

function diagramEgress(env: ResolvedEnvironment): DiagramEgress {
  const plan = egressPlan(env);
  const nat = env.network.natSubnet;
  if (plan.internet === "none") return { kind: "endpoints", services: [...plan.interfaceEndpoints, "s3"].sort() };
  if (nat) return { kind: "nat", subnet: { key: "nat", label: "public subnet (NAT gateway)", cidr: nat.cidr, availabilityZone: nat.availabilityZone } };
  return { kind: "adopted" };
}

/** `all services` when a server serves every service of the environment, else the list. */
export function serverServicesText(server: DiagramServer, allServices: readonly string[]): string {
  const every = allServices.length > 0 && allServices.every((s) => server.services.includes(s));
  const text = every ? "all services" : server.services.join(", ");
  return server.backupFor.length > 0 ? `${text}; backup for ${server.backupFor.join(", ")}` : text;
}
