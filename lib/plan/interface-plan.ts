/**
 * The network layout resolved once into interface (ENI) plans per node: which subnet, which address,
 * which device index, which side (client / server) and whether the source/destination check stays on.
 * Constructs read these plans instead of testing the layout themselves. Pure: no cdktf.
 */
import { ResolvedEnvironment, ResolvedNode, ResolvedSubnet, usesTproxy } from "../config/model";
import { isNlb, nodeVipTargets } from "./nlb";

/** OS name of an interface (the bootstrap renames the Nitro `ens5`/`ens6` to these by MAC). */
export type InterfaceName = "eth0" | "eth1";

/** One ENI of one load balancer node. */
export interface InterfacePlan {
  /** `eth0` (device index 0, the instance's primary ENI) or `eth1` (device index 1, two-arm only). */
  readonly name: InterfaceName;
  /** EC2 attachment device index. */
  readonly deviceIndex: 0 | 1;
  /** Its subnet: the layout's, or the node's own (a pair across availability zones). */
  readonly subnet: ResolvedSubnet;
  /** The ENI's primary private IPv4 address. */
  readonly address: string;
  /** Faces the clients and carries the VIPs (eth1 in two-arm, eth0 in one-arm). */
  readonly clientSide: boolean;
  /** Reaches the real servers, the admin networks, the peer node and the AWS APIs (eth0). */
  readonly serverSide: boolean;
  /**
   * Whether EC2's source/destination check stays on. Off only where the traffic needs it: the server side
   * when a service uses TProxy (packets to the servers carry the client's address, replies come back to
   * it), the client side in route-table VIP mode (the overlay VIP is not an address of the ENI).
   */
  readonly sourceDestCheck: boolean;
}

/** The interfaces of `node`: eth0 only in one-arm; eth0 internal + eth1 external in two-arm. */
export function planInterfaces(env: ResolvedEnvironment, node: ResolvedNode): readonly InterfacePlan[] {
  const tproxy = usesTproxy(env);
  const overlayVips = env.ha?.vipMode === "route-table";
  switch (env.network.layout) {
    case "one-arm":
      return [
        {
          name: "eth0",
          deviceIndex: 0,
          subnet: node.internalSubnet,
          address: node.internalAddress,
          clientSide: true,
          serverSide: true,
          sourceDestCheck: !tproxy && !overlayVips,
        },
      ];
    case "two-arm": {
      if (!node.externalAddress || !node.externalSubnet) throw new Error(`two-arm node '${node.name}' has no externalAddress (the loader should have rejected it)`);
      return [
        {
          name: "eth0",
          deviceIndex: 0,
          subnet: node.internalSubnet,
          address: node.internalAddress,
          clientSide: false,
          serverSide: true,
          sourceDestCheck: !tproxy,
        },
        {
          name: "eth1",
          deviceIndex: 1,
          subnet: node.externalSubnet,
          address: node.externalAddress,
          clientSide: true,
          serverSide: false,
          sourceDestCheck: !overlayVips,
        },
      ];
    }
  }
}

/** The client-side interface of a node's plans (eth1 in two-arm, eth0 in one-arm). */
export function clientInterface(plans: readonly InterfacePlan[]): InterfacePlan {
  const found = plans.find((p) => p.clientSide);
  if (!found) throw new Error("no client-side interface in the plan");
  return found;
}

/**
 * The VIP addresses assigned to a node's client-side ENI when Terraform creates it: every VIP on a single
 * node; on the primary of a pair in secondary-ip and elastic-ip modes (keepalived's notify script moves them
 * afterwards); none in route-table mode (overlay VIPs are routes, not ENI addresses); with nlb each node's
 * own addresses of the VIPs (the NLBs' targets), for good.
 */
export function initialVipAddresses(env: ResolvedEnvironment, node: ResolvedNode): readonly string[] {
  if (isNlb(env)) return nodeVipTargets(env, node.name);
  if (env.ha?.vipMode === "route-table") return [];
  if (env.nodes.length === 2 && node.role !== "primary") return [];
  return env.vips.map((v) => v.address);
}

/** The distinct subnets of one side of every node, in node order: `client` carries the VIPs, `server` is eth0's. */
export function subnetsOfSide(env: ResolvedEnvironment, side: "client" | "server"): readonly ResolvedSubnet[] {
  const found = new Map<string, ResolvedSubnet>();
  for (const node of env.nodes) {
    for (const plan of planInterfaces(env, node)) {
      if (side === "client" ? plan.clientSide : plan.serverSide) found.set(plan.subnet.key, plan.subnet);
    }
  }
  return [...found.values()];
}

/** True when keepalived moves the VIPs, so Terraform must not manage the ENIs' secondary IPs after creation. */
export function vipsFloat(env: ResolvedEnvironment): boolean {
  return env.nodes.length === 2 && !isNlb(env);
}
