/**
 * A node's machine: its cloud-init user data (OS set-up, packages, interfaces, routing, the configuration
 * agent and where its configuration lives), rendered from the machine definition only. A change here needs
 * a new instance (see `generation`); the configuration bundle (`bundle.ts`) changes in place. Pure.
 */
import { BootstrapInterface, BootstrapSpec, encodeUserData, renderUserData } from "../bootstrap";
import { ResolvedEnvironment, ResolvedNode, usesKeepalived, usesTproxy } from "../config/model";
import { isNlb, nodeVipTargets } from "../plan/nlb";
import { vipInterface } from "./ha-pair";

/** The machine of a node: what its user data is rendered from, and the user data. */
export interface NodeMachine {
  readonly node: ResolvedNode;
  /** The bootstrap's input (for inspection and tests). */
  readonly bootstrap: BootstrapSpec;
  /** cloud-init user data (text, before encoding). */
  readonly userData: string;
  /** What EC2 receives: base64, gzipped first when the text is over the 16 KB user-data limit. */
  readonly userDataBase64: string;
}

/** Packages the nodes get besides HAProxy: socat for the runtime API (drain / maintenance over SSM). */
const OPERATOR_TOOLS = ["socat"];

/**
 * The machine definition of a node: what its user data is rendered from. Only OS, packages, interfaces,
 * routing and where the configuration lives; a change here needs a new instance (see `generation`).
 */
export function machineSpec(env: ResolvedEnvironment, node: ResolvedNode): BootstrapSpec {
  const pair = env.nodes.length === 2;
  const keepalived = usesKeepalived(env);
  // A single node carries its VIPs as static addresses; in a VRRP pair keepalived adds them on the MASTER;
  // behind NLBs (vipMode nlb) each node carries its own addresses of the VIPs (the NLBs' targets) for good.
  const vipAddresses = isNlb(env) ? nodeVipTargets(env, node.name) : pair ? [] : env.vips.map((v) => v.address);
  const clientSide = vipInterface(env);
  const interfaces: BootstrapInterface[] = [
    { name: "eth0", role: "internal", deviceIndex: 0, subnetCidr: node.internalSubnet.cidr, addresses: clientSide === "eth0" ? vipAddresses : [] },
  ];
  if (node.externalSubnet) {
    interfaces.push({ name: "eth1", role: "external", deviceIndex: 1, subnetCidr: node.externalSubnet.cidr, addresses: vipAddresses });
  }
  return {
    envName: env.name,
    nodeName: node.name,
    region: env.region,
    os: env.loadBalancer.os,
    haproxy: env.loadBalancer.haproxy,
    image: env.loadBalancer.image,
    interfaces,
    configStore: { bucket: env.configStore.bucket, prefix: env.configStore.prefix },
    // Always: HAProxy binds VIPs a pair's MASTER takes over and eth1 addresses that arrive after it starts.
    nonlocalBind: true,
    tproxy: usesTproxy(env),
    cloudWatchLogGroup: env.admin.cloudWatchLogGroup,
    extraPackages: OPERATOR_TOOLS,
    extraServices: keepalived ? ["keepalived"] : [],
    systemUsers: keepalived ? ["keepalived_script"] : [],
  };
}

/**
 * The machine of node `nodeName` of `env`: its machine definition and user data, rendered once; the
 * encoded user data when first read (it throws when even gzipped it is over EC2's limit).
 */
export function nodeMachine(env: ResolvedEnvironment, nodeName: string): NodeMachine {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const bootstrap = machineSpec(env, node);
  const userData = renderUserData(bootstrap);
  let userDataBase64: string | undefined;
  return {
    node,
    bootstrap,
    userData,
    get userDataBase64() {
      return (userDataBase64 ??= encodeUserData(userData));
    },
  };
}
