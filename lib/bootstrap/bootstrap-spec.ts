/**
 * The input of the cloud-init bootstrap renderer, its validation, and the resolved form the script
 * renderers work from. Pure: no cdktf, no I/O.
 */
import { AWS_REGION_PATTERN, S3_BUCKET_PATTERN } from "../contract/node-contract";

/** Operating systems the bootstrap supports. */
export type BootstrapOs = "ubuntu-24.04" | "debian-13" | "al2023";

/** Whether the OS installs with apt (Ubuntu, Debian). */
export function isAptOs(os: BootstrapOs): boolean {
  return os === "ubuntu-24.04" || os === "debian-13";
}

/** Where HAProxy comes from. */
export interface HaproxySource {
  /**
   * `distribution`: the OS package (HAProxy 2.8 LTS on Ubuntu 24.04 and AL2023).
   * `ppa`: Vincent Bernat's `ppa:vbernat/haproxy-<version>` (Ubuntu only).
   */
  readonly source: "distribution" | "ppa";
  /**
   * LTS series to pin (`major.minor` with an even minor, e.g. `"2.8"`, `"3.0"`, `"3.2"`): apt pins the
   * package to `<version>.*` (patch updates still flow); on AL2023 `dnf` installs `haproxy-<version>.*`.
   * @default for `ppa`: `"3.0"`; for `distribution`: no pin (whatever LTS the OS ships)
   */
  readonly version?: string;
}

/** One ENI as the bootstrap sees it. */
export interface BootstrapInterface {
  /** The name the bootstrap gives the ENI (matched by MAC, renamed with netplan `set-name` / systemd `.link`). */
  readonly name: "eth0" | "eth1";
  /** `internal`: server side; `external`: client / VIP side (two-arm: eth0 internal, eth1 external). */
  readonly role: "internal" | "external";
  /** The EC2 attachment device index (IMDS `device-number`): eth0 is 0, eth1 is 1. */
  readonly deviceIndex: 0 | 1;
  /** The ENI's subnet, e.g. `"10.20.1.0/24"`; its router (base + 1) is the default gateway of the ENI's table. */
  readonly subnetCidr: string;
  /**
   * Extra addresses configured on the interface as /32, e.g. a single node's VIPs (EC2 secondary private
   * IPs are not configured by DHCP). An HA pair's VIPs are not listed: keepalived adds them on the MASTER.
   * @default []
   */
  readonly addresses?: readonly string[];
}

/** Everything the bootstrap of one load balancer node needs. */
export interface BootstrapSpec {
  /** Environment name (comments and log stream names only). */
  readonly envName: string;
  /**
   * Node name, set as the hostname: HAProxy's `peers` section needs the local peer name to equal the
   * hostname. A lowercase DNS label.
   */
  readonly nodeName: string;
  /** AWS region, e.g. `"eu-central-1"` (Secrets Manager and CloudWatch calls). */
  readonly region: string;
  /**
   * Operating system of the AMI.
   * @default "ubuntu-24.04"
   */
  readonly os?: BootstrapOs;
  /**
   * HAProxy package source and pinned LTS series.
   * @default { source: "distribution" }
   */
  readonly haproxy?: HaproxySource;
  /**
   * `stock`: the OS's image; the bootstrap installs the packages from the OS's mirror. `baked`: an image of
   * imaging-lb's recipe; the bootstrap installs nothing, checks the image has every package and HAProxy's
   * series, and fails naming what is missing.
   * @default "stock"
   */
  readonly image?: "stock" | "baked";
  /** The ENIs: one (one-arm, eth0) or two (two-arm: eth0 internal, eth1 external). */
  readonly interfaces: ReadonlyArray<BootstrapInterface>;
  /**
   * Where the node's configuration bundle and status live (the agent polls it): the S3 bucket and key
   * prefix. Without a bucket the agent uses `imaging-lb-<envName>-<account id>` (the stack's bucket; the
   * account id comes from IMDS).
   */
  readonly configStore: { readonly bucket?: string; readonly prefix: string };
  /** Sets `net.ipv4.ip_nonlocal_bind=1` so HAProxy can bind floating VIPs this node does not hold yet. */
  readonly nonlocalBind: boolean;
  /**
   * Transparent proxying: `net.ipv4.ip_forward=1`, the mangle `DIVERT` rules, `ip rule fwmark 1 lookup 100`
   * and `ip route local 0.0.0.0/0 dev lo table 100`. None of these are set up without it.
   */
  readonly tproxy: boolean;
  /**
   * CloudWatch Logs group to ship HAProxy's log lines to (amazon-cloudwatch-agent); the instance role needs
   * `logs:CreateLogStream`, `logs:PutLogEvents` and `logs:DescribeLogStreams` on it.
   * @default no shipping: HAProxy logs stay in the journal
   */
  readonly cloudWatchLogGroup?: string;
  /**
   * Extra packages installed (no service), e.g. `["socat"]` for the runtime API.
   * @default []
   */
  readonly extraPackages?: ReadonlyArray<string>;
  /**
   * System users created before the extra services start, e.g. keepalived's `script_user`.
   * @default []
   */
  readonly systemUsers?: ReadonlyArray<string>;
  /**
   * Packages installed whose service the configuration bundle starts (package name = service name), e.g.
   * `["keepalived"]`: the agent enables it once it installed the service's configuration.
   * @default []
   */
  readonly extraServices?: ReadonlyArray<string>;
}

/** Thrown by {@link resolveBootstrapSpec} with every problem of a spec at once. */
export class BootstrapSpecError extends Error {
  /** One line per problem: `path: what is wrong, got <value>; fix`. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid bootstrap spec (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`);
    this.name = "BootstrapSpecError";
    this.problems = problems;
  }
}

/** An ENI with its derived routing values. */
export interface ResolvedInterface extends BootstrapInterface {
  readonly addresses: readonly string[];
  /** Policy routing table of this ENI (two-arm only): 1000 + device index. */
  readonly table: number;
  /** The VPC router of the subnet: subnet base + 1. */
  readonly router: string;
}

/** A validated spec with defaults applied; what the script renderers consume. */
export interface ResolvedBootstrap {
  readonly envName: string;
  readonly nodeName: string;
  readonly region: string;
  readonly os: BootstrapOs;
  readonly haproxySource: "distribution" | "ppa";
  readonly image: "stock" | "baked";
  /** Pinned series, or undefined for the distribution's own. */
  readonly haproxyVersion: string | undefined;
  readonly layout: "one-arm" | "two-arm";
  /** Sorted by device index. */
  readonly interfaces: readonly ResolvedInterface[];
  readonly configStore: { readonly bucket?: string; readonly prefix: string };
  readonly nonlocalBind: boolean;
  readonly tproxy: boolean;
  readonly cloudWatchLogGroup: string | undefined;
  readonly extraServices: readonly string[];
  readonly extraPackages: readonly string[];
  readonly systemUsers: readonly string[];
  /** The AWS CLI is needed: always (the agent reads its bundle from S3). */
  readonly needsAwsCli: boolean;
}

/** Default PPA series when `haproxy.source` is `ppa` and no version is given. */
export const DEFAULT_PPA_HAPROXY_VERSION = "3.0";
/** First policy routing table number; an ENI's table is this + its device index. */
export const ROUTE_TABLE_BASE = 1000;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LOG_GROUP = /^[A-Za-z0-9._/#-]{1,512}$/;
const PACKAGE = /^[a-z0-9][a-z0-9.+-]*$/;
const LTS_SERIES = /^(\d+)\.(\d+)$/;

/** Parses `a.b.c.d/n` into a 32-bit base and prefix, or undefined when malformed. */
function parseCidr(cidr: string): { base: number; prefix: number; normalised: boolean } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (m === null) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const base = addr - (addr % size);
  return { base, prefix, normalised: base === addr };
}

function ipv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** The VPC router of a subnet (base + 1), e.g. `10.0.2.0/24` → `10.0.2.1`. */
export function subnetRouter(subnetCidr: string): string {
  const parsed = parseCidr(subnetCidr);
  if (parsed === undefined) throw new BootstrapSpecError([`subnetCidr: expected a.b.c.d/n, got ${JSON.stringify(subnetCidr)}`]);
  return ipv4(parsed.base + 1);
}

/**
 * Validates `spec`, applies the defaults and derives the routing values.
 * @throws {BootstrapSpecError} listing every problem at once
 */
export function resolveBootstrapSpec(spec: BootstrapSpec): ResolvedBootstrap {
  const problems: string[] = [];
  const bad = (path: string, value: unknown, expected: string): void => {
    problems.push(`${path}: expected ${expected}, got ${JSON.stringify(value)}`);
  };

  if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.envName)) bad("envName", spec.envName, "1-64 of [A-Za-z0-9._-]");
  if (!DNS_LABEL.test(spec.nodeName)) {
    bad("nodeName", spec.nodeName, "a lowercase DNS label (it becomes the hostname and the HAProxy peer name)");
  }
  if (!AWS_REGION_PATTERN.test(spec.region)) bad("region", spec.region, "an AWS region such as eu-central-1");

  const os: BootstrapOs = spec.os ?? "ubuntu-24.04";
  if (os !== "ubuntu-24.04" && os !== "debian-13" && os !== "al2023") bad("os", os, `"ubuntu-24.04", "debian-13" or "al2023"`);

  const image = spec.image ?? "stock";
  if (image !== "stock" && image !== "baked") bad("image", image, `"stock" or "baked"`);
  const haproxySource = spec.haproxy?.source ?? "distribution";
  let haproxyVersion = spec.haproxy?.version;
  if (haproxySource !== "distribution" && haproxySource !== "ppa") {
    bad("haproxy.source", haproxySource, `"distribution" or "ppa"`);
  }
  if (haproxySource === "ppa") {
    haproxyVersion ??= DEFAULT_PPA_HAPROXY_VERSION;
    if (os !== "ubuntu-24.04") problems.push(`haproxy.source: "ppa" is Ubuntu only, got os "${os}"; use source "distribution"`);
  }
  if (haproxyVersion !== undefined) {
    const m = LTS_SERIES.exec(haproxyVersion);
    if (m === null || Number(m[2]) % 2 !== 0) {
      bad("haproxy.version", haproxyVersion, "an HAProxy LTS series major.minor with an even minor, e.g. 2.8, 3.0, 3.2");
    }
  }

  const interfaces: ResolvedInterface[] = [];
  if (spec.interfaces.length < 1 || spec.interfaces.length > 2) {
    bad("interfaces", spec.interfaces.length, "1 interface (one-arm) or 2 (two-arm)");
  }
  spec.interfaces.forEach((eni, i) => {
    const path = `interfaces[${i}]`;
    const expectedIndex = eni.name === "eth0" ? 0 : eni.name === "eth1" ? 1 : undefined;
    if (expectedIndex === undefined) bad(`${path}.name`, eni.name, `"eth0" or "eth1"`);
    else if (eni.deviceIndex !== expectedIndex) {
      bad(`${path}.deviceIndex`, eni.deviceIndex, `${expectedIndex} for ${eni.name}`);
    }
    if (spec.interfaces.filter((other) => other.name === eni.name).length > 1) {
      problems.push(`${path}.name: ${JSON.stringify(eni.name)} appears more than once; each ENI needs its own name`);
    }
    const cidr = parseCidr(eni.subnetCidr);
    if (cidr === undefined || cidr.prefix < 16 || cidr.prefix > 28) {
      bad(`${path}.subnetCidr`, eni.subnetCidr, "an IPv4 subnet a.b.c.d/16..28 (the AWS subnet size range)");
    } else if (!cidr.normalised) {
      bad(`${path}.subnetCidr`, eni.subnetCidr, `the network address (${ipv4(cidr.base)}/${cidr.prefix})`);
    } else {
      (eni.addresses ?? []).forEach((a, j) => {
        if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(a) || a.split(".").some((o) => Number(o) > 255)) bad(`${path}.addresses[${j}]`, a, "an IPv4 address");
      });
      interfaces.push({ ...eni, addresses: [...(eni.addresses ?? [])], table: ROUTE_TABLE_BASE + eni.deviceIndex, router: ipv4(cidr.base + 1) });
    }
  });
  interfaces.sort((a, b) => a.deviceIndex - b.deviceIndex);
  const layout = spec.interfaces.length === 2 ? "two-arm" : "one-arm";
  if (layout === "one-arm" && spec.interfaces.length === 1 && spec.interfaces[0].name !== "eth0") {
    bad("interfaces[0].name", spec.interfaces[0].name, `"eth0" (one-arm uses the primary ENI only)`);
  }
  if (layout === "two-arm") {
    for (const eni of spec.interfaces) {
      const role = eni.name === "eth0" ? "internal" : "external";
      if (eni.role !== role) {
        bad(`interfaces[${eni.name}].role`, eni.role, `"${role}" (two-arm: eth0 internal / server side, eth1 external / VIP side)`);
      }
    }
  }

  if (spec.configStore.bucket !== undefined && !S3_BUCKET_PATTERN.test(spec.configStore.bucket)) {
    bad("configStore.bucket", spec.configStore.bucket, "an S3 bucket name (3-63 of a-z 0-9 . -)");
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.configStore.prefix)) bad("configStore.prefix", spec.configStore.prefix, "1-64 of [A-Za-z0-9._-]");

  if (spec.cloudWatchLogGroup !== undefined && !LOG_GROUP.test(spec.cloudWatchLogGroup)) {
    bad("cloudWatchLogGroup", spec.cloudWatchLogGroup, "a CloudWatch Logs group name (1-512 of [A-Za-z0-9._/#-])");
  }

  const extraServices = [...(spec.extraServices ?? [])];
  extraServices.forEach((name, i) => {
    if (!PACKAGE.test(name) || name === "haproxy") {
      bad(`extraServices[${i}]`, name, "a package/service name such as keepalived (haproxy is always installed)");
    }
  });
  if (new Set(extraServices).size !== extraServices.length) problems.push("extraServices: lists a service twice");
  const extraPackages = [...(spec.extraPackages ?? [])];
  extraPackages.forEach((name, i) => {
    if (!PACKAGE.test(name)) bad(`extraPackages[${i}]`, name, "a package name such as socat");
  });
  const systemUsers = [...(spec.systemUsers ?? [])];
  systemUsers.forEach((u, i) => {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(u)) bad(`systemUsers[${i}]`, u, "a system user name such as keepalived_script");
  });

  if (problems.length > 0) throw new BootstrapSpecError(problems);
  return {
    envName: spec.envName,
    nodeName: spec.nodeName,
    region: spec.region,
    os,
    haproxySource,
    image,
    haproxyVersion,
    layout,
    interfaces,
    configStore: spec.configStore,
    nonlocalBind: spec.nonlocalBind,
    tproxy: spec.tproxy,
    cloudWatchLogGroup: spec.cloudWatchLogGroup,
    extraServices,
    extraPackages,
    systemUsers,
    needsAwsCli: true,
  };
}
