/**
 * The resolved environment: the environment file after the preset is applied, validated, and with
 * every default filled in. Renderers (haproxy.cfg, keepalived.conf, cloud-init) and constructs read
 * only this. Collections are sorted by the user's names so output never depends on file order.
 */
import { NODE_CONTRACT } from "../contract/node-contract";
import type { ResolvedMonitoring } from "./monitoring";
import type { Network } from "./schema";

export type Layout = Network["layout"];
export type ServiceMode = "http" | "tcp";
export type Balance = "leastconn" | "roundrobin" | "source" | "active-backup";
export type PersistenceType = "none" | "source-ip" | "cookie" | "cookie-source" | "app-cookie";
export type CheckType = "tcp" | "tls" | "http" | "dicom-echo" | "none";
export type TlsMode = "none" | "terminate" | "reencrypt" | "passthrough";
export type ClientAddressMode = "snat" | "forwarded-for" | "tproxy" | "source";
export type VipMode = "secondary-ip" | "elastic-ip" | "route-table" | "nlb";

/** A subnet of the layout or of one node. */
export interface ResolvedSubnet {
  /** Stable name for construct ids: `internal`, `external`, `subnet`, or `<node>-internal` / `<node>-external`. */
  readonly key: string;
  readonly cidr: string;
  readonly availabilityZone: string;
  /** Adopted subnet; undefined means the stack creates it. */
  readonly subnetId?: string;
}

export interface ResolvedNode {
  /** Key in loadBalancer.nodes; also the hostname and the HAProxy peer name. */
  readonly name: string;
  readonly role: "primary" | "secondary";
  /** eth0: server side (the only interface in one-arm). */
  readonly internalAddress: string;
  readonly internalSubnet: ResolvedSubnet;
  /** eth1 (two-arm only): client side, carrying the VIPs. */
  readonly externalAddress?: string;
  readonly externalSubnet?: ResolvedSubnet;
  /** Machine generation: raising it replaces this node's instance (and nothing else does). */
  readonly generation: number;
}

/** ha.vipMode nlb: a VIP in one node's availability zone. */
export interface ResolvedNlbZone {
  /** The node (its availability zone). */
  readonly node: string;
  /** The node's client-side subnet: the NLB's subnet mapping in this zone. */
  readonly subnet: ResolvedSubnet;
  /** The NLB's fixed private IPv4 in this zone. */
  readonly address: string;
  /** The VIP's address on the node (a secondary IP of its client-side ENI): the NLB's target, HAProxy's bind. */
  readonly target: string;
}

export interface ResolvedVip {
  readonly name: string;
  /**
   * The VIP's address. With ha.vipMode nlb: the NLB's fixed address in the primary node's zone (the
   * others, and the nodes' own addresses of the VIP, are in {@link nlb}).
   */
  readonly address: string;
  readonly elasticIp: boolean;
  /** An adopted Elastic IP; undefined with elasticIp means the stack allocates one. */
  readonly elasticIpAllocationId?: string;
  /** ha.vipMode nlb: the VIP in each node's zone, in node order. */
  readonly nlb?: readonly ResolvedNlbZone[];
}

export interface ResolvedMember {
  /** Key in servers. */
  readonly name: string;
  readonly address: string;
  /** Port on the server; undefined means the port the client connected to. */
  readonly port?: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly aeTitle?: string;
}

export interface ResolvedHealthCheck {
  readonly type: CheckType;
  readonly port?: number;
  readonly path: string;
  readonly method: "GET" | "HEAD" | "OPTIONS";
  readonly host?: string;
  readonly expectStatus: string;
  readonly ssl: boolean;
  /**
   * Ports checked one after the other in one check (a server is UP only when every one answers): the
   * service's front-end ports when the servers listen on the port the client connected to and no check
   * port is given; empty otherwise (the check uses `port`, or the server's port).
   */
  readonly ports: readonly number[];
  readonly calledAeTitle?: string;
  readonly callingAeTitle: string;
  readonly variant: "c-echo" | "associate";
  readonly interval: string;
  readonly fall: number;
  readonly rise: number;
}

export interface ResolvedTimeouts {
  readonly connect: string;
  readonly client: string;
  readonly server: string;
  readonly queue: string;
  readonly check: string;
  readonly httpRequest?: string;
  readonly httpKeepAlive?: string;
  readonly tunnel?: string;
}

export interface ResolvedHeaderRules {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
  readonly delete: readonly string[];
  readonly replace: ReadonlyArray<{ readonly name: string; readonly match: string; readonly with: string }>;
}

export interface ResolvedRoute {
  readonly name: string;
  readonly pathPrefixes: readonly string[];
  readonly members: readonly ResolvedMember[];
  readonly stripPrefix: boolean;
  /** Port the route's servers are checked on: the service's explicit check port, else the route's port. */
  readonly checkPort?: number;
}

export interface ResolvedCertificate {
  readonly name: string;
  readonly secretArn: string;
  /** The customer managed KMS key of the secret, when it has one. */
  readonly kmsKeyArn?: string;
  /** Where the bootstrap writes the PEM on the load balancer. */
  readonly path: string;
}

/** A page HAProxy answers with instead of its own: the HTML body (imaging-lb adds status line and headers). */
export interface ResolvedErrorPage {
  readonly status: number;
  readonly html: string;
}

export interface ResolvedMaintenance {
  /** Switched on in the environment file (the runtime map can switch it on or off until the next reload). */
  readonly enabled: boolean;
  readonly html: string;
  /** Clients that still reach the servers during maintenance. */
  readonly allowedSources: readonly string[];
  readonly retryAfterSeconds: number;
}

export interface ResolvedService {
  readonly name: string;
  readonly description?: string;
  readonly vip: ResolvedVip;
  readonly frontendPorts: readonly number[];
  readonly backendPort?: number;
  readonly mode: ServiceMode;
  readonly balance: Balance;
  readonly persistence: { readonly type: PersistenceType; readonly timeout: string; readonly cookieName: string };
  readonly healthCheck: ResolvedHealthCheck;
  readonly timeouts: ResolvedTimeouts;
  readonly tls: {
    readonly mode: TlsMode;
    readonly certificate?: ResolvedCertificate;
    readonly hsts: boolean;
    readonly redirectHttpPort?: number;
    readonly verifyServer: "required" | "none";
    readonly serverName?: string;
    /** reencrypt: the CA bundle the servers' certificates are verified against (else the system store). */
    readonly caCertificate?: ResolvedCertificate;
    /** terminate/reencrypt: the listeners' TLS profile. */
    readonly profile: "intermediate" | "legacy";
  };
  readonly requestHeaders: ResolvedHeaderRules;
  readonly responseHeaders: ResolvedHeaderRules;
  readonly routes: readonly ResolvedRoute[];
  readonly rewrites: ReadonlyArray<{ readonly match: string; readonly replace: string }>;
  readonly clientAddress: ClientAddressMode;
  /** The source address HAProxy uses towards the servers when clientAddress is `source`. */
  readonly sourceAddress?: string;
  readonly clientCidrs: readonly string[];
  readonly tcpKeepalive: boolean;
  /** clitcpka-/srvtcpka- idle, interval (HAProxy durations) and probe count. */
  readonly tcpKeepaliveTimers: { readonly idle: string; readonly interval: string; readonly count: number };
  /** Front-end maxconn (an explicit value, or this service's share of the global maxconn). */
  readonly maxConnections: number;
  readonly serverMaxConnections: number;
  /** Undefined: a recovered server gets its full share at once. */
  readonly slowstart?: string;
  readonly shutdownSessionsOnDown: boolean;
  /** http: clients whose forwarded-address headers are kept; empty: removed from every client. */
  readonly trustedProxies: readonly string[];
  readonly connectionRateLimit?: number;
  /** tcp: log when the server connection opens (option logasap). */
  readonly logAtOpen: boolean;
  readonly proxyProtocol?: "v1" | "v2";
  readonly sorryServer?: { readonly address: string; readonly port: number };
  /** http: the site's own pages for statuses HAProxy answers itself, sorted by status. */
  readonly errorPages: readonly ResolvedErrorPage[];
  /** http: maintenance mode (a block in the file, enabled or ready for the runtime switch). */
  readonly maintenance?: ResolvedMaintenance;
  readonly members: readonly ResolvedMember[];
  readonly extraDirectives: { readonly frontend: readonly string[]; readonly backend: readonly string[] };
}

export interface ResolvedEnvironment {
  readonly name: string;
  readonly region: string;
  /** The file it was loaded from, as named by the user. */
  readonly sourceFile: string;
  readonly network: Network;
  readonly loadBalancer: {
    readonly instanceType: string;
    readonly os: "ubuntu-24.04" | "debian-13" | "al2023";
    readonly amiSsmParameter?: string;
    /** The pinned image of every node (no SSM lookup, no ignore_changes): changing it replaces the nodes. */
    readonly amiId?: string;
    /** stock: the OS's image, packages installed at first boot; baked: amiId was built by imaging-lb's recipe. */
    readonly image: "stock" | "baked";
    /** loadBalancer.imageBuild: an EC2 Image Builder pipeline for this environment's image. */
    readonly imageBuild?: { readonly subnetId: string; readonly instanceType: string; readonly schedule?: string };
    /** The package source and the LTS series it is pinned to. */
    readonly haproxy: { readonly source: "distribution" | "ppa"; readonly version: string };
    /** HAProxy's global maxconn (loadBalancer.haproxy.maxConnections, or sized to the instance type). */
    readonly maxConnections: number;
    readonly rootVolumeGiB: number;
    /** HAProxy `hard-stop-after`: how long a previous worker keeps its connections after a reload. */
    readonly hardStopAfter: string;
  };
  /** Sorted by name; the first is the primary. */
  readonly nodes: readonly ResolvedNode[];
  readonly ha?: {
    readonly vipMode: VipMode;
    readonly virtualRouterId: number;
    readonly advertIntervalSeconds: number;
    readonly preempt: boolean;
    readonly routeTableIds?: readonly string[];
    /** vipMode nlb: cross-zone load balancing, and how long a replaced node drains (deregistration delay). */
    readonly nlb?: { readonly crossZone: boolean; readonly drainSeconds: number };
  };
  readonly vips: readonly ResolvedVip[];
  /** Every subnet of the environment (layout and per-node), deduplicated by key. */
  readonly subnets: readonly ResolvedSubnet[];
  readonly services: readonly ResolvedService[];
  readonly certificates: readonly ResolvedCertificate[];
  readonly access: {
    readonly clientCidrs: readonly string[];
    readonly adminCidrs: readonly string[];
    /** The account's quota of inbound (and of outbound) rules per security group. @default 60 */
    readonly securityGroupRuleQuota?: number;
  };
  readonly admin: {
    readonly statsPort: number;
    readonly statsUser: string;
    readonly statsPasswordSecretArn: string;
    readonly statsPasswordKmsKeyArn?: string;
    readonly prometheus: boolean;
    readonly cloudWatchLogGroup?: string;
  };
  /** Where the configuration bundles and node status live: the bucket (undefined: created by the stack) and key prefix. */
  readonly configStore: { readonly bucket?: string; readonly kmsKeyArn?: string; readonly prefix: string; readonly writerArns: readonly string[] };
  readonly stateBackend?: { readonly bucket: string; readonly key: string; readonly region: string };
  readonly tags: Readonly<Record<string, string>>;
  /** Metrics, alarms, notifications and dashboard (monitoring section, every default filled in). */
  readonly monitoring: ResolvedMonitoring;
}

/** True when any enabled service needs TProxy (forwarding, mangle rules, source/dest check off). */
export function usesTproxy(env: ResolvedEnvironment): boolean {
  return env.services.some((s) => s.clientAddress === "tproxy");
}

/** True when the environment runs keepalived: a pair whose VIPs move (every vipMode but nlb). */
export function usesKeepalived(env: ResolvedEnvironment): boolean {
  return env.nodes.length === 2 && env.ha !== undefined && env.ha.vipMode !== "nlb";
}

/** The subnet CIDR on the client (VIP) side: eth1's in two-arm, eth0's in one-arm. */
export function clientSideCidr(network: Network): string {
  return network.layout === "two-arm" ? network.external.cidr : network.subnet.cidr;
}

/** The subnet CIDR on the server side: eth0's in both layouts. */
export function serverSideCidr(network: Network): string {
  return network.layout === "two-arm" ? network.internal.cidr : network.subnet.cidr;
}

/** Path of the environment file through which HAProxy reads secrets handed over at boot. */
export const HAPROXY_ENV_FILE = NODE_CONTRACT.paths.haproxyEnv;
/** Environment variable holding the stats password inside haproxy.cfg (never the value itself). */
export const STATS_PASSWORD_VAR = "IMAGING_LB_STATS_PASSWORD";
/** Folder of the TLS PEM files on the load balancer. */
export const CERT_DIR = NODE_CONTRACT.paths.certDir;
/** Loopback liveness endpoint of HAProxy that keepalived tracks: 200 at the path while HAProxy runs. */
export const HEALTH_ENDPOINT = { address: "127.0.0.1", port: 8405, path: "/healthz" } as const;
/** {@link HEALTH_ENDPOINT} as the URL keepalived's probe and the agent read. */
export const HEALTH_URL = `http://${HEALTH_ENDPOINT.address}:${HEALTH_ENDPOINT.port}${HEALTH_ENDPOINT.path}`;

/** The `loadBalancer.ha` defaults: the schema's, a pair's without an `ha` section, keepalived's renderer's. */
export const HA_DEFAULTS = { vipMode: "secondary-ip", virtualRouterId: 51, advertIntervalSeconds: 0.5, preempt: true } as const;

/** TCP port HAProxy's peers protocol uses between the nodes (haproxy.cfg, security groups, checks). */
export const PEERS_PORT = 10000;

/** Connections the stats and health front-ends keep for themselves out of the global maxconn. */
export const ADMIN_CONNECTION_RESERVE = 100;

/**
 * Default global maxconn for an EC2 instance type, by its size: about 34 KB of buffers per connection
 * keeps 20000 connections well inside the 4 GiB of the smallest supported size (c6i.large).
 */
export function defaultMaxConnections(instanceType: string): number {
  const size = instanceType.split(".")[1] ?? "";
  if (["nano", "micro", "small"].includes(size)) return 2000;
  if (size === "medium") return 10000;
  if (size === "large") return 20000;
  if (size === "xlarge") return 40000;
  return 80000;
}

/**
 * File descriptors HAProxy needs for a global maxconn: two per proxied connection (client and server side)
 * plus listeners, checks, peers, logs and the runtime API. The haproxy.service unit's LimitNOFILE must be at
 * least this, or HAProxy refuses to start ("Cannot raise FD limit").
 */
export function haproxyFileDescriptors(maxConnections: number): number {
  return 2 * maxConnections + 1000;
}
