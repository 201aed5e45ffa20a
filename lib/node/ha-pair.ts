/**
 * The HA pair's node-specific files: keepalived.conf (unicast VRRP on eth0, the VIPs on the client-side
 * interface) and the takeover script keepalived runs when the node becomes MASTER. Pure.
 */
import { HEALTH_URL, ResolvedEnvironment, ResolvedNode, usesKeepalived } from "../config/model";
import { NODE_CONTRACT } from "../contract/node-contract";
import { renderKeepalivedConfig, renderNotifyScript, VipFailover } from "../keepalived";

/** Where the bootstrap installs the takeover script; keepalived's notify_master runs it. */
export const TAKEOVER_SCRIPT_PATH = NODE_CONTRACT.paths.takeoverScript;
export const KEEPALIVED_CONF_PATH = NODE_CONTRACT.paths.keepalivedConf;

export interface PairFiles {
  readonly keepalivedConf: string;
  readonly takeoverScript: string;
}

/** The interface carrying the VIPs: eth1 in two-arm, eth0 in one-arm. */
export function vipInterface(env: ResolvedEnvironment): "eth0" | "eth1" {
  return env.network.layout === "two-arm" ? "eth1" : "eth0";
}

function failover(env: ResolvedEnvironment): VipFailover {
  const ha = env.ha!;
  switch (ha.vipMode) {
    case "nlb":
      throw new Error("vipMode nlb has no VIP takeover (no keepalived): the NLB chooses the nodes");
    case "secondary-ip":
      return { mode: "secondary-ip", privateIps: env.vips.map((v) => v.address) };
    case "elastic-ip":
      return {
        mode: "elastic-ip",
        associations: env.vips.map((v) => ({ allocationId: v.elasticIpAllocationId!, privateIpAddress: v.address })),
      };
    case "route-table":
      return { mode: "route-table", vips: env.vips.map((v) => v.address), routeTableIds: ha.routeTableIds ?? [] };
    default: {
      const never: never = ha.vipMode;
      throw new Error(`unknown vipMode ${String(never)}`);
    }
  }
}


/** keepalived.conf and the takeover script of `node`; undefined for a single load balancer and for vipMode nlb. */
export function pairFiles(env: ResolvedEnvironment, node: ResolvedNode): PairFiles | undefined {
  if (!usesKeepalived(env) || !env.ha) return undefined;
  const peer = env.nodes.find((n) => n.name !== node.name)!;
  const keepalivedConf = renderKeepalivedConfig({
    envName: env.name,
    node: node.role,
    interfaceName: "eth0",
    selfAddress: node.internalAddress,
    peerAddress: peer.internalAddress,
    virtualRouterId: env.ha.virtualRouterId,
    virtualAddresses: env.vips.map((v) => v.address),
    vipInterfaceName: vipInterface(env),
    advertIntervalSeconds: env.ha.advertIntervalSeconds,
    preempt: env.ha.preempt,
    notifyMasterScript: TAKEOVER_SCRIPT_PATH,
    // keepalived tracks the HAProxy processes itself (kernel process events: a dead HAProxy is seen at once,
    // nothing forked); the loopback probe only catches an HAProxy that runs but does not answer, every 3 s.
    // notify_master_rx_lower_pri reruns the takeover (the renderer's default): after the nodes lost each
    // other, the MASTER that wins takes the VIPs back in EC2.
    haproxyCheck: { healthUrl: HEALTH_URL },
  });
  const takeoverScript = renderNotifyScript({
    envName: env.name,
    region: env.region,
    interfaceName: vipInterface(env),
    failover: failover(env),
  });
  return { keepalivedConf, takeoverScript };
}
