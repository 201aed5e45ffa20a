/**
 * The two load-balancer layouts the product deploys, as ready-made topologies (address plan in the header
 * of `netns.ts`). Hosts: `client1..N`, `router`, `lb` (and `lb2` with `haPair`), `srv1..N`.
 */
import { buildTopology, type HostSpec, type Topology, type TopologySpec } from "./netns";

/** Options shared by both layouts. */
export interface LayoutOptions {
  /** Number of real servers `srv1..srvN` (198.51.100.21, .22, ...). @default 2 */
  readonly servers?: number;
  /** Number of clients `client1..clientN` (192.0.2.10, .11, ...). @default 1 */
  readonly clients?: number;
  /** Number of VIPs configured on the LB (`.100`, `.101`, ...). @default 1 */
  readonly vips?: number;
  /**
   * Add a second LB node `lb2` (eth addresses `.11`) for HA tests. The VIPs are configured on `lb` only
   * (keepalived or the test moves them). @default false
   */
  readonly haPair?: boolean;
  /**
   * Add an admin workstation `admin1` (198.51.100.5/24) on the server-side segment, e.g. as the only
   * address of `access.adminCidrs` when testing the stats page and `/metrics` on LB eth0. @default false
   */
  readonly adminHost?: boolean;
}

/** Options of {@link buildTwoArm}. */
export interface TwoArmOptions extends LayoutOptions {
  /**
   * The servers' default route: `"none"` (SNAT only; servers cannot reach clients by themselves) or
   * `"lb"` (via LB eth0, which TProxy needs). @default "none"
   */
  readonly serverDefaultRoute?: "none" | "lb";
}

/** Options of {@link buildOneArm}. */
export interface OneArmOptions extends LayoutOptions {
  /**
   * `"secondary-ip"`: VIPs are extra addresses in 198.51.100.0/24 on LB eth0 (an AWS secondary private IP).
   * `"overlay"`: VIPs are 203.0.113.100+/32 on LB eth0 and the router routes them to the LB (an AWS
   * route-table VIP outside the VPC CIDR). @default "secondary-ip"
   */
  readonly vipMode?: "secondary-ip" | "overlay";
}

/** A built layout with the addresses tests need. */
export interface LbTopology {
  readonly layout: "one-arm" | "two-arm";
  readonly topology: Topology;
  /** Client host keys (`client1`, ...). */
  readonly clients: readonly string[];
  /** The admin workstation (`admin1`, 198.51.100.5) when built with `adminHost`. */
  readonly admin: { readonly host: string; readonly address: string } | undefined;
  /** Real-server host keys (`srv1`, ...), index-aligned with {@link serverAddresses}. */
  readonly servers: readonly string[];
  readonly serverAddresses: readonly string[];
  /** LB host keys: `["lb"]` or `["lb", "lb2"]`. */
  readonly lbs: readonly string[];
  /** Address of LB eth0 (server side; the SNAT source): 198.51.100.10. */
  readonly lbInternalAddress: string;
  /** Address of LB eth1 (two-arm only): 203.0.113.10. */
  readonly lbExternalAddress: string | undefined;
  /** The VIPs clients connect to. */
  readonly vips: readonly string[];
}

const CLIENT_NET = "192.0.2";
const INTERNAL_NET = "198.51.100";
const EXTERNAL_NET = "203.0.113";
/** Sysctls of an LB node: a full proxy does not forward; non-local bind lets HAProxy bind a VIP it does not hold yet. */
const LB_SYSCTLS = { "net.ipv4.ip_forward": 0, "net.ipv4.ip_nonlocal_bind": 1 } as const;

/** The admin workstation of {@link LayoutOptions.adminHost}: on the server-side segment, no default route. */
const ADMIN = { host: "admin1", address: `${INTERNAL_NET}.5` } as const;

function adminHosts(options: LayoutOptions, segment: string): Record<string, HostSpec> {
  return options.adminHost ? { [ADMIN.host]: { interfaces: { eth0: { segment, addresses: [`${ADMIN.address}/24`] } } } } : {};
}

function range(count: number, first: number, net: string): string[] {
  return Array.from({ length: count }, (_, i) => `${net}.${first + i}`);
}

function checkCount(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name}: expected an integer 1-${max}, got ${value}`);
  return value;
}

function clientHosts(count: number): Record<string, HostSpec> {
  const hosts: Record<string, HostSpec> = {};
  range(count, 10, CLIENT_NET).forEach((address, i) => {
    hosts[`client${i + 1}`] = { interfaces: { eth0: { segment: "cli", addresses: [`${address}/24`] } }, gateway: `${CLIENT_NET}.1` };
  });
  return hosts;
}

/**
 * Two-arm: clients → router → external segment 203.0.113.0/24 (LB eth1 + VIPs); LB eth0 on the internal
 * segment 198.51.100.0/24 with the servers.
 */
export function buildTwoArm(options: TwoArmOptions = {}): LbTopology {
  const servers = checkCount("servers", options.servers ?? 2, 50);
  const clients = checkCount("clients", options.clients ?? 1, 50);
  const vips = range(checkCount("vips", options.vips ?? 1, 20), 100, EXTERNAL_NET);
  const serverAddresses = range(servers, 21, INTERNAL_NET);
  const hosts: Record<string, HostSpec> = {
    ...clientHosts(clients),
    router: {
      interfaces: {
        eth0: { segment: "cli", addresses: [`${CLIENT_NET}.1/24`] },
        eth1: { segment: "ext", addresses: [`${EXTERNAL_NET}.1/24`] },
      },
      sysctls: { "net.ipv4.ip_forward": 1 },
    },
  };
  const lbs = options.haPair ? ["lb", "lb2"] : ["lb"];
  lbs.forEach((lb, i) => {
    hosts[lb] = {
      interfaces: {
        eth0: { segment: "int", addresses: [`${INTERNAL_NET}.${10 + i}/24`] },
        eth1: { segment: "ext", addresses: [`${EXTERNAL_NET}.${10 + i}/24`, ...(i === 0 ? vips.map((v) => `${v}/24`) : [])] },
      },
      gateway: `${EXTERNAL_NET}.1`,
      sysctls: LB_SYSCTLS,
    };
  });
  serverAddresses.forEach((address, i) => {
    hosts[`srv${i + 1}`] = {
      interfaces: { eth0: { segment: "int", addresses: [`${address}/24`] } },
      ...(options.serverDefaultRoute === "lb" ? { gateway: `${INTERNAL_NET}.10` } : {}),
    };
  });
  const spec: TopologySpec = {
    segments: { cli: { description: "clients 192.0.2.0/24" }, ext: { description: "external 203.0.113.0/24" }, int: { description: "internal 198.51.100.0/24" } },
    hosts: { ...hosts, ...adminHosts(options, "int") },
  };
  return lbTopology("two-arm", spec, { clients, adminHost: options.adminHost, serverAddresses, lbs, vips });
}

/** Builds the topology and describes it the way both layouts do (eth1 exists in two-arm only). */
function lbTopology(
  layout: "one-arm" | "two-arm",
  spec: TopologySpec,
  parts: { clients: number; adminHost?: boolean; serverAddresses: string[]; lbs: string[]; vips: string[] },
): LbTopology {
  return {
    layout,
    topology: buildTopology(spec),
    clients: Object.keys(clientHosts(parts.clients)),
    admin: parts.adminHost ? ADMIN : undefined,
    servers: parts.serverAddresses.map((_, i) => `srv${i + 1}`),
    serverAddresses: parts.serverAddresses,
    lbs: parts.lbs,
    lbInternalAddress: `${INTERNAL_NET}.10`,
    lbExternalAddress: layout === "two-arm" ? `${EXTERNAL_NET}.10` : undefined,
    vips: parts.vips,
  };
}

/**
 * One-arm: clients → router ("VPC router") → one segment 198.51.100.0/24 holding LB eth0 (+ VIPs) and the
 * servers; everything behind the router uses it as default gateway.
 */
export function buildOneArm(options: OneArmOptions = {}): LbTopology {
  const servers = checkCount("servers", options.servers ?? 2, 50);
  const clients = checkCount("clients", options.clients ?? 1, 50);
  const overlay = options.vipMode === "overlay";
  const vipCount = checkCount("vips", options.vips ?? 1, 20);
  const vips = range(vipCount, 100, overlay ? EXTERNAL_NET : INTERNAL_NET);
  const serverAddresses = range(servers, 21, INTERNAL_NET);
  const hosts: Record<string, HostSpec> = {
    ...clientHosts(clients),
    router: {
      interfaces: {
        eth0: { segment: "cli", addresses: [`${CLIENT_NET}.1/24`] },
        eth1: { segment: "vpc", addresses: [`${INTERNAL_NET}.1/24`] },
      },
      routes: overlay ? vips.map((vip) => ({ to: `${vip}/32`, via: `${INTERNAL_NET}.10` })) : [],
      sysctls: { "net.ipv4.ip_forward": 1 },
    },
  };
  const lbs = options.haPair ? ["lb", "lb2"] : ["lb"];
  lbs.forEach((lb, i) => {
    const vipAddresses = i > 0 ? [] : vips.map((vip) => `${vip}/${overlay ? 32 : 24}`);
    hosts[lb] = {
      interfaces: { eth0: { segment: "vpc", addresses: [`${INTERNAL_NET}.${10 + i}/24`, ...vipAddresses] } },
      gateway: `${INTERNAL_NET}.1`,
      sysctls: LB_SYSCTLS,
    };
  });
  serverAddresses.forEach((address, i) => {
    hosts[`srv${i + 1}`] = { interfaces: { eth0: { segment: "vpc", addresses: [`${address}/24`] } }, gateway: `${INTERNAL_NET}.1` };
  });
  const spec: TopologySpec = {
    segments: { cli: { description: "clients 192.0.2.0/24" }, vpc: { description: "VPC subnet 198.51.100.0/24" } },
    hosts: { ...hosts, ...adminHosts(options, "vpc") },
  };
  return lbTopology("one-arm", spec, { clients, adminHost: options.adminHost, serverAddresses, lbs, vips });
}
