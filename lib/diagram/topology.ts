/**
 * The drawing's content, independent of the output format: what the Mermaid and SVG renderers show,
 * derived once from the resolved environment. Pure data; every list keeps the environment's order
 * (sorted by the user's names), so the drawings are deterministic.
 */
import { cidrContains } from "../config/net";
import { ResolvedEnvironment, ResolvedService, serverSideCidr, VipMode } from "../config/model";

/** A subnet drawn as a group. */
export interface DiagramSubnet {
  /** `subnet` (one-arm), `external` or `internal` (two-arm). */
  readonly key: "subnet" | "external" | "internal";
  /** Heading, e.g. `external subnet (eth1)`. */
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
  /** Whether its address lies in the load balancer's server-side subnet (else it is reached through a router). */
  readonly onServerSubnet: boolean;
}

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
  readonly ha?: { readonly vipMode: VipMode; readonly virtualRouterId: number };
  readonly servers: readonly DiagramServer[];
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

  const nodes: DiagramNode[] = env.nodes.map((n) => {
    const eth0: DiagramInterface = { device: "eth0", address: n.internalAddress };
    const client: DiagramInterface = net.layout === "two-arm" && n.externalAddress !== undefined ? { device: "eth1", address: n.externalAddress } : eth0;
    return { name: n.name, role: n.role, clientInterface: client, serverInterface: eth0 };
  });

  const vips: DiagramVip[] = env.vips.map((v) => ({
    name: v.name,
    address: v.address,
    elasticIp: v.elasticIp,
    services: env.services.filter((s) => s.vip.name === v.name).map(serviceLine),
  }));

  const serverCidr = serverSideCidr(net);
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
      onServerSubnet: cidrContains(serverCidr, s.address),
    }));

  const pair = env.nodes.length === 2;
  const shape = pair ? `HA pair (${env.ha?.vipMode ?? "secondary-ip"})` : "single load balancer";
  return {
    name: env.name,
    region: env.region,
    layout: net.layout,
    summary: `${net.layout}, ${shape}, ${env.region}`,
    clientCidrs: env.access.clientCidrs,
    subnets,
    vips,
    nodes,
    ...(pair ? { ha: { vipMode: env.ha?.vipMode ?? "secondary-ip", virtualRouterId: env.ha?.virtualRouterId ?? 51 } } : {}),
    servers,
  };
}

/** `all services` when a server serves every service of the environment, else the list. */
export function serverServicesText(server: DiagramServer, allServices: readonly string[]): string {
  const every = allServices.length > 0 && allServices.every((s) => server.services.includes(s));
  const text = every ? "all services" : server.services.join(", ");
  return server.backupFor.length > 0 ? `${text}; backup for ${server.backupFor.join(", ")}` : text;
}
