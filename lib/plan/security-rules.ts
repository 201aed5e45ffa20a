/**
 * The security group rules of one ENI, computed from the environment: what may reach the load balancer
 * and what it may reach, nothing else. Pure (no cdktf): the security-groups construct only turns these
 * into `aws_vpc_security_group_{ingress,egress}_rule` resources, keyed by {@link SecurityRule.key}.
 */
import { PEERS_PORT, ResolvedEnvironment, ResolvedNode, ResolvedService } from "../config/model";
import { egressPlan } from "./egress";
import { isNlb } from "./nlb";
import { NLB_HEALTH_CHECK, servicePorts } from "../config/nlb-limits";
import { InterfacePlan } from "./interface-plan";

/** IP protocol number of VRRP (keepalived's advertisements, unicast between the peers). */
export const VRRP_PROTOCOL = "112";

/** Port of HTTP: package mirrors (Ubuntu's EC2 mirrors and the PPA are plain HTTP; packages are signed). */
export const HTTP_PORT = 80;
/** Port of HTTPS: the AWS APIs (SSM, Secrets Manager, EC2, CloudWatch Logs) and HTTPS package mirrors. */
export const HTTPS_PORT = 443;

/** One rule of an ENI's security group. */
export interface SecurityRule {
  /**
   * Stable id derived from the rule's content (`ingress-tcp-443-10-0-0-0_8`), used as the construct id:
   * adding or removing a service never renumbers the other rules.
   */
  readonly key: string;
  /** `ingress`: to the load balancer; `egress`: from it. */
  readonly direction: "ingress" | "egress";
  /** `tcp`, or `112` (VRRP, no ports). */
  readonly protocol: "tcp" | typeof VRRP_PROTOCOL;
  /** TCP port (the first of a range); absent for VRRP. */
  readonly port?: number;
  /** Last port of a range of contiguous ports merged into one rule; absent for a single port. */
  readonly toPort?: number;
  /** The peer: source CIDR for ingress, destination CIDR for egress (absent when {@link group} is the peer). */
  readonly cidr?: string;
  /**
   * The peer as a security group instead of a CIDR: a symbolic name the construct maps to a group id, e.g.
   * `nlb-web` (the NLB of VIP web, vipMode nlb).
   */
  readonly group?: string;
  /**
   * The peer as an AWS-managed prefix list instead: a symbolic name the construct maps to the list's id
   * (`s3`: S3's addresses in the region, reached through its gateway endpoint).
   */
  readonly prefixList?: string;
  /** Why the rule exists (every reason when several needs share one rule). */
  readonly description: string;
}

/** Options of {@link securityRules}. */
export interface SecurityRuleOptions {
  /**
   * Destinations of eth0's package and API egress: TCP 80 (package mirrors) and 443 (AWS APIs, HTTPS
   * mirrors). Use the VPC CIDR (interface endpoints) plus your proxy or mirror to narrow it.
   * @default the egress plan's: ["0.0.0.0/0"] with an internet path; none with a baked image without one
   */
  readonly packageEgressCidrs?: readonly string[];
}

/** The back-end ports of a service per real server address: member ports, route ports, check port. */
function backendTargets(s: ResolvedService): Map<string, Set<number>> {
  const targets = new Map<string, Set<number>>();
  const add = (address: string, ports: readonly number[]) => {
    const set = targets.get(address) ?? new Set<number>();
    for (const p of ports) set.add(p);
    targets.set(address, set);
  };
  const portsOf = (port: number | undefined) => (port !== undefined ? [port] : s.frontendPorts);
  for (const m of s.members) add(m.address, portsOf(m.port));
  for (const r of s.routes) for (const m of r.members) add(m.address, portsOf(m.port));
  if (s.healthCheck.type !== "none" && s.healthCheck.port !== undefined) {
    for (const m of [...s.members, ...s.routes.flatMap((r) => r.members)]) add(m.address, [s.healthCheck.port]);
  }
  if (s.sorryServer) add(s.sorryServer.address, [s.sorryServer.port]);
  return targets;
}

const hostCidr = (address: string) => `${address}/32`;

/** The peer of a rule as text: its CIDR, or `sg-<group>`. */
export function rulePeer(rule: Pick<SecurityRule, "cidr" | "group" | "prefixList">): string {
  return rule.cidr ?? (rule.prefixList !== undefined ? `pl-${rule.prefixList}` : `sg-${rule.group ?? "?"}`);
}

/** The symbolic name of VIP `vip`'s NLB security group (vipMode nlb), as {@link SecurityRule.group} names it. */
export const nlbGroupName = (vip: string) => `nlb-${vip}`;

const keyPeer = (peer: string) => peer.replace(/\./g, "-").replace("/", "_");

/**
 * The rules of `iface` of `node`:
 * - client side: each service's front-end ports (and HTTP redirect port) from that service's clientCidrs;
 * - server side (eth0): the stats/metrics port from the admin CIDRs; egress to each real server (/32) on the
 *   ports the service uses there; package and API egress as the {@link egressPlan} says (TCP 80 and 443 to
 *   the internet, or, with a baked image and no internet path, 443 to the interface endpoints and S3's
 *   prefix list only); in a pair, VRRP (IP protocol 112) and
 *   TCP {@link PEERS_PORT} to and from the peer's eth0 address only.
 * No SSH, no other 0.0.0.0/0 rule. Sorted by key, duplicates merged, and contiguous ports of the same
 * direction and peer merged into one port range (`ingress-tcp-2310-2311-10-0-0-0_8`), so they count once
 * against the security group's quota.
 */
export function securityRules(env: ResolvedEnvironment, node: ResolvedNode, iface: InterfacePlan, options: SecurityRuleOptions = {}): readonly SecurityRule[] {
  const rules = new Map<string, SecurityRule>();
  const addRule = (direction: SecurityRule["direction"], protocol: SecurityRule["protocol"], port: number | undefined, peer: { cidr: string } | { group: string } | { prefixList: string }, why: string) => {
    const what = protocol === VRRP_PROTOCOL ? "vrrp" : `tcp-${port}`;
    const key = `${direction}-${what}-${keyPeer(rulePeer(peer))}`;
    const existing = rules.get(key);
    const description = existing ? (existing.description.split("; ").includes(why) ? existing.description : `${existing.description}; ${why}`) : why;
    rules.set(key, { key, direction, protocol, ...(port !== undefined ? { port } : {}), ...peer, description: description.slice(0, 255) });
  };
  const add = (direction: SecurityRule["direction"], protocol: SecurityRule["protocol"], port: number | undefined, cidr: string, why: string) =>
    addRule(direction, protocol, port, { cidr }, why);

  if (iface.clientSide && isNlb(env)) {
    // Behind the NLBs: the services' ports and the health check from each VIP's NLB only (its security
    // group; the clients' CIDRs are the NLB's to check). Client IP preservation keeps the clients' addresses.
    for (const vip of env.vips) {
      const group = nlbGroupName(vip.name);
      for (const s of env.services.filter((x) => x.vip.name === vip.name)) {
        for (const port of servicePorts(s)) addRule("ingress", "tcp", port, { group }, `clients of ${s.name} through the NLB of ${vip.name}`);
      }
      addRule("ingress", "tcp", NLB_HEALTH_CHECK.port, { group }, `health checks of the NLB of ${vip.name}`);
    }
  } else if (iface.clientSide) {
    for (const s of env.services) {
      const ports = [...s.frontendPorts, ...(s.tls.redirectHttpPort !== undefined ? [s.tls.redirectHttpPort] : [])];
      for (const port of ports) for (const cidr of s.clientCidrs) add("ingress", "tcp", port, cidr, `clients of ${s.name}`);
    }
  }
  if (iface.clientSide && !iface.serverSide) {
    // clientAddress source from an address of this (client-side) interface, such as the VIP in two-arm:
    // HAProxy's connections to the servers (and its checks) leave from it, so they need egress here too.
    const ownAddresses = new Set([iface.address, ...env.vips.map((v) => v.address)]);
    for (const s of env.services) {
      if (s.clientAddress !== "source" || s.sourceAddress === undefined || !ownAddresses.has(s.sourceAddress)) continue;
      for (const [address, ports] of backendTargets(s)) {
        for (const port of [...ports].sort((a, b) => a - b)) add("egress", "tcp", port, hostCidr(address), `servers of ${s.name} from ${s.sourceAddress}`);
      }
    }
  }
  if (iface.serverSide) {
    for (const cidr of env.access.adminCidrs) add("ingress", "tcp", env.admin.statsPort, cidr, "admin: stats and metrics");
    for (const s of env.services) {
      for (const [address, ports] of backendTargets(s)) {
        for (const port of [...ports].sort((a, b) => a - b)) add("egress", "tcp", port, hostCidr(address), `servers of ${s.name}`);
      }
    }
    const egress = egressPlan(env);
    for (const cidr of options.packageEgressCidrs ?? egress.internetCidrs) {
      add("egress", "tcp", HTTP_PORT, cidr, "package mirrors (HTTP)");
      add("egress", "tcp", HTTPS_PORT, cidr, "AWS APIs and package mirrors (HTTPS)");
    }
    for (const cidr of egress.apiCidrs) add("egress", "tcp", HTTPS_PORT, cidr, "AWS APIs (interface endpoints)");
    if (egress.s3PrefixList) addRule("egress", "tcp", HTTPS_PORT, { prefixList: "s3" }, "S3: configuration bundles (gateway endpoint)");
    // Every other node: a VRRP pair's peer, or the other one or two nodes behind NLBs.
    for (const peer of env.nodes.length >= 2 ? env.nodes.filter((n) => n.name !== node.name) : []) {
      for (const direction of ["ingress", "egress"] as const) {
        // VRRP only where keepalived runs (every pair but vipMode nlb); the stick tables' peers always.
        if (!isNlb(env)) add(direction, VRRP_PROTOCOL, undefined, hostCidr(peer.internalAddress), `VRRP with ${peer.name}`);
        add(direction, "tcp", PEERS_PORT, hostCidr(peer.internalAddress), `HAProxy peers with ${peer.name}`);
      }
    }
  }
  return mergePortRanges([...rules.values()]).sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * The rules of VIP `vipName`'s Network Load Balancer (vipMode nlb): its listeners' ports from each
 * service's clientCidrs in; out, those ports and the health check port to the VIP's address on each node
 * (the targets) only. Sorted by key, contiguous ports merged like a node's.
 */
export function nlbSecurityRules(env: ResolvedEnvironment, vipName: string): readonly SecurityRule[] {
  const vip = env.vips.find((v) => v.name === vipName);
  if (!vip?.nlb) throw new Error(`VIP '${vipName}' is not behind an NLB (vipMode nlb)`);
  const rules = new Map<string, SecurityRule>();
  const add = (direction: SecurityRule["direction"], port: number, cidr: string, why: string) => {
    const key = `${direction}-tcp-${port}-${keyPeer(cidr)}`;
    const existing = rules.get(key);
    const description = existing ? (existing.description.split("; ").includes(why) ? existing.description : `${existing.description}; ${why}`) : why;
    rules.set(key, { key, direction, protocol: "tcp", port, cidr, description: description.slice(0, 255) });
  };
  for (const s of env.services.filter((x) => x.vip.name === vipName)) {
    for (const port of servicePorts(s)) {
      for (const cidr of s.clientCidrs) add("ingress", port, cidr, `clients of ${s.name}`);
      for (const zone of vip.nlb) add("egress", port, hostCidr(zone.target), `${s.name} on ${zone.node}`);
    }
  }
  for (const zone of vip.nlb) add("egress", NLB_HEALTH_CHECK.port, hostCidr(zone.target), `health checks of ${zone.node}`);
  return mergePortRanges([...rules.values()]).sort((a, b) => a.key.localeCompare(b.key));
}

/** Merges TCP rules of one direction and peer whose ports are contiguous into port-range rules. */
export function mergePortRanges(rules: readonly SecurityRule[]): SecurityRule[] {
  const out: SecurityRule[] = [];
  const groups = new Map<string, SecurityRule[]>();
  for (const rule of rules) {
    if (rule.port === undefined) {
      out.push(rule);
      continue;
    }
    const group = `${rule.direction} ${rule.protocol} ${rulePeer(rule)}`;
    groups.set(group, [...(groups.get(group) ?? []), rule]);
  }
  for (const group of groups.values()) {
    const sorted = [...group].sort((a, b) => (a.port ?? 0) - (b.port ?? 0));
    let run: SecurityRule[] = [];
    const flush = () => {
      if (run.length === 0) return;
      const first = run[0];
      const last = run[run.length - 1];
      if (run.length === 1) {
        out.push(first);
      } else {
        const reasons = [...new Set(run.flatMap((r) => r.description.split("; ")))].join("; ");
        const what = `tcp-${first.port}-${last.port}`;
        out.push({
          key: `${first.direction}-${what}-${keyPeer(rulePeer(first))}`,
          direction: first.direction,
          protocol: first.protocol,
          port: first.port,
          toPort: last.port,
          ...(first.cidr !== undefined ? { cidr: first.cidr } : first.prefixList !== undefined ? { prefixList: first.prefixList } : { group: first.group }),
          description: reasons.slice(0, 255),
        });
      }
      run = [];
    };
    for (const rule of sorted) {
      const previous = run[run.length - 1];
      if (previous && rule.port !== (previous.port ?? 0) + 1) flush();
      run.push(rule);
    }
    flush();
  }
  return out;
}
