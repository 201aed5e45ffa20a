/**
 * The loader's part of ha.vipMode nlb (both nodes active behind a Network Load Balancer per VIP): the
 * VIPs resolved per node (zone), the settings, and every rule the file alone decides — two or three nodes, each in its own
 * availability zones, addresses inside the nodes' client-side subnets, at most 50 listeners per NLB, the
 * NLB health port free, and HAProxy's TCP keep-alives below each listener's idle timeout. Every problem is
 * reported to the collector, at its field. Pure: imports nothing from cdktf.
 */
import { ResolvedNlbZone, ResolvedNode, ResolvedService, ResolvedVip } from "./model";
import { FieldPath, ProblemCollector } from "./locate";
import { cidrContains, durationMs, isAwsReserved } from "./net";
import type { Environment } from "./schema";
import {
  NLB_DEREGISTRATION_DELAY_SECONDS,
  NLB_HEALTH_CHECK,
  NLB_IDLE_TIMEOUT_SECONDS,
  NLB_LISTENERS_PER_LOAD_BALANCER,
  MAX_NLB_NODES,
  listenerIdleSeconds,
  servicePorts,
  serviceIdleSeconds,
} from "./nlb-limits";

/** True when the file asks for vipMode nlb. */
export function nlbRequested(env: Environment): boolean {
  return env.loadBalancer.ha?.vipMode === "nlb";
}

/** The subnet facing the clients of a resolved node: eth1's in two-arm, eth0's in one-arm. */
function clientSubnet(env: Environment, node: ResolvedNode) {
  return env.network.layout === "two-arm" ? node.externalSubnet : node.internalSubnet;
}

/** ha.nlb with its defaults, and the rules of the ha block in nlb mode (no VRRP settings). */
export function resolveNlbSettings(env: Environment, out: ProblemCollector): { crossZone: boolean; drainSeconds: number } | undefined {
  const ha = env.loadBalancer.ha;
  if (!ha) return undefined;
  if (ha.vipMode !== "nlb") {
    if (ha.nlb) out.add(["loadBalancer", "ha", "nlb"], `only used with vipMode nlb, not ${ha.vipMode}`, "key");
    return undefined;
  }
  for (const field of ["virtualRouterId", "advertIntervalSeconds", "preempt"] as const) {
    if (out.has(["loadBalancer", "ha", field])) {
      out.add(["loadBalancer", "ha", field], "a VRRP setting: vipMode nlb runs no keepalived (the NLB's health checks choose the nodes); remove it", "key");
    }
  }
  const drainTime = ha.nlb?.drainTime ?? "300s";
  const drainSeconds = durationMs(drainTime) / 1000;
  const { min, max } = NLB_DEREGISTRATION_DELAY_SECONDS;
  if (!Number.isInteger(drainSeconds) || drainSeconds < min || drainSeconds > max) {
    out.add(["loadBalancer", "ha", "nlb", "drainTime"], `expected whole seconds from ${min}s to ${max}s (1h), the NLB's deregistration delay range, got "${drainTime}"`);
  }
  return { crossZone: ha.nlb?.crossZone ?? false, drainSeconds };
}

/** The nodes (two or three), each in an availability zone of its own (their client-side subnets are the NLB's subnet mappings). */
export function checkNlbNodes(env: Environment, nodes: readonly ResolvedNode[], out: ProblemCollector): void {
  if (nodes.length < 2 || nodes.length > MAX_NLB_NODES) return; // "expected 2 or 3 nodes" / "HA settings need ..." say it already
  const field = env.network.layout === "two-arm" ? "externalSubnet" : "internalSubnet";
  const own = env.network.layout === "two-arm" ? "internalSubnet and externalSubnet" : "internalSubnet";
  const count = nodes.length === 2 ? "two" : "three";
  for (const [i, node] of nodes.entries()) {
    const b = clientSubnet(env, node);
    if (!b) continue;
    const first = nodes.slice(0, i).find((n) => clientSubnet(env, n)?.availabilityZone === b.availabilityZone);
    if (!first) continue;
    out.add(
      ["loadBalancer", "nodes", node.name, field],
      `expected node ${node.name}'s client-side subnet in another availability zone than ${first.name}'s (${b.availabilityZone}), got ${b.availabilityZone}: vipMode nlb puts one node in each of ${count} zones, so that an AZ's loss leaves the other${nodes.length === 2 ? "" : "s"}; give ${node.name} its own ${own} in another zone of ${env.region}`,
      "key",
    );
  }
}

/**
 * The VIPs of nlb mode: per VIP and node, the NLB's fixed address in the node's client-side subnet and
 * the VIP's address on the node, both in that subnet, neither reserved by AWS nor used twice.
 */
export function resolveNlbVips(env: Environment, nodes: readonly ResolvedNode[], out: ProblemCollector): ResolvedVip[] {
  const seen = new Map<string, string>();
  for (const n of nodes) {
    seen.set(n.internalAddress, `loadBalancer.nodes.${n.name}.internalAddress`);
    if (n.externalAddress) seen.set(n.externalAddress, `loadBalancer.nodes.${n.name}.externalAddress`);
  }
  const nodeNames = nodes.map((n) => n.name);
  const entries = Object.entries(env.vips).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) out.add(["vips"], "expected at least one VIP");
  return entries.map(([name, vip]): ResolvedVip => {
    const at = (...rest: Array<string | number>): FieldPath => ["vips", name, ...rest];
    if (vip.address !== undefined) {
      out.add(at("address"), `with ha.vipMode nlb a VIP has an address per node (availability zone): remove address and give nlb: { ${nodeNames.map((n) => `${n}: { address: <the NLB's address in ${n}'s zone>, target: <the VIP's address on ${n}> }`).join(", ")} }`, "key");
    }
    if (vip.elasticIp) out.add(at("elasticIp"), "the NLB of vipMode nlb is internal (clients reach it over the VPC, Direct Connect or VPN): it takes no Elastic IP", "key");
    if (vip.elasticIpAllocationId) out.add(at("elasticIpAllocationId"), "the NLB of vipMode nlb is internal: it takes no Elastic IP", "key");
    const zones: ResolvedNlbZone[] = [];
    if (!vip.nlb) {
      out.add(
        at(),
        `missing nlb: with ha.vipMode nlb each VIP needs, per node, the NLB's fixed address in the node's zone and the VIP's address on the node, e.g. nlb: { ${nodeNames.map((n) => `${n}: { address: ..., target: ... }`).join(", ")} }`,
        "key",
      );
    } else {
      for (const key of Object.keys(vip.nlb)) {
        if (!nodeNames.includes(key)) out.add(at("nlb", key), `unknown node '${key}'; nodes defined: ${nodeNames.join(", ")}`, "key");
      }
      for (const node of nodes) {
        const zone = vip.nlb[node.name];
        if (!zone) {
          out.add(at("nlb"), `missing ${node.name}: the NLB's address in ${node.name}'s availability zone and the VIP's address on ${node.name} (${node.name}: { address: ..., target: ... })`, "key");
          continue;
        }
        const subnet = clientSubnet(env, node);
        if (!subnet) continue;
        for (const field of ["address", "target"] as const) {
          const path = at("nlb", node.name, field);
          const value = zone[field];
          const what = field === "address" ? "the NLB's fixed address" : `the VIP's address on ${node.name}`;
          if (!cidrContains(subnet.cidr, value)) {
            out.add(path, `expected ${what} in ${node.name}'s client-side subnet ${subnet.cidr} (${subnet.availabilityZone}), got "${value}"`);
          } else if (isAwsReserved(subnet.cidr, value)) {
            out.add(path, `"${value}" is reserved by AWS (the first four and the last address of ${subnet.cidr}); choose another`);
          }
          const other = seen.get(value);
          if (other) out.add(path, `"${value}" is already used by ${other}`);
          seen.set(value, path.join("."));
        }
        zones.push({ node: node.name, subnet, address: zone.address, target: zone.target });
      }
    }
    return { name, address: zones[0]?.address ?? "0.0.0.0", elasticIp: false, nlb: zones };
  });
}

/**
 * The rules of the services in nlb mode: an address of their own for the VIP (clientAddress source from the
 * VIP does not exist: the VIP is the NLB's), at most 50 listeners per NLB, the NLB health port free, and
 * HAProxy's idle connections kept alive below each listener's idle timeout.
 */
export function checkNlbServices(env: Environment, vips: readonly ResolvedVip[], services: readonly ResolvedService[], out: ProblemCollector): void {
  const at = (s: ResolvedService, ...rest: Array<string | number>): FieldPath => ["services", s.name, ...rest];
  const health = NLB_HEALTH_CHECK.port;
  if (env.admin.statsPort === health) out.add(["admin", "statsPort"], `port ${health} is the NLB's health check of the nodes (vipMode nlb); choose another stats port`);
  for (const vip of vips) {
    const ports = services.filter((s) => s.vip.name === vip.name).flatMap(servicePorts);
    if (ports.length > NLB_LISTENERS_PER_LOAD_BALANCER) {
      out.add(
        ["vips", vip.name],
        `VIP '${vip.name}' would need ${ports.length} NLB listeners (one per port of its services), over the ${NLB_LISTENERS_PER_LOAD_BALANCER} a Network Load Balancer takes (a fixed AWS quota); move services to another VIP (each VIP is an NLB of its own)`,
        "key",
      );
    }
  }
  for (const s of services) {
    if (s.clientAddress === "source") {
      out.add(at(s, "clientAddress"), "clientAddress source needs an address every node holds; with vipMode nlb the VIP is the NLB's and each node has its own: use snat (or forwarded-for, tproxy)");
    }
    servicePorts(s).forEach((port, i) => {
      if (port === health) {
        const path = i < s.frontendPorts.length ? at(s, "frontendPorts", i) : at(s, "tls", "redirectHttpPort");
        out.add(path, `port ${health} is the NLB's health check of the nodes (vipMode nlb); use another port`);
      }
    });
    // The NLB forgets an idle connection after the listener's idle timeout: only a service that keeps idle
    // connections longer (above NLB's 6000 s) needs its keep-alives to reach the NLB before that.
    const idle = serviceIdleSeconds(s);
    const listener = listenerIdleSeconds(s);
    if (idle <= listener) continue;
    const timers = s.tcpKeepaliveTimers;
    if (s.tcpKeepalive) {
      for (const field of ["idle", "interval"] as const) {
        const seconds = durationMs(timers[field]) / 1000;
        if (seconds >= listener) {
          out.add(
            at(s, "tcpKeepaliveTimers", field),
            `expected a keep-alive ${field} below ${listener} s, got "${timers[field]}": HAProxy keeps an idle connection of this service up to ${idle} s, the NLB listener's idle timeout is ${listener} s (NLB's most), and a connection whose keep-alive probes come later is dropped by the NLB without a word to either side`,
          );
        }
      }
    } else {
      out.add(
        at(s, "tcpKeepalive"),
        `HAProxy keeps an idle connection of this service up to ${idle} s, but an NLB listener forgets one after at most ${NLB_IDLE_TIMEOUT_SECONDS.max} s and then drops it without a word to either side: turn tcpKeepalive on (probes below ${listener} s keep it open) or shorten the timeouts to ${NLB_IDLE_TIMEOUT_SECONDS.max} s or less`,
        "key",
      );
    }
  }
}
