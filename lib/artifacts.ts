/**
 * Everything rendered for one load balancer node: the machine (cloud-init user data: OS set-up, packages,
 * interfaces, the configuration agent) and the configuration bundle the agent applies (haproxy.cfg, and in
 * a pair keepalived.conf and the takeover script). Pure: the constructs call this and only attach the
 * result; the CLI prints the same artifacts.
 */
import { BootstrapInterface, BootstrapSpec, encodeUserData, renderUserData } from "./bootstrap";
import { ConfigBundle, ConfigBundleOptions, nodeBundle } from "./bundle/config-bundle";
import { ResolvedEnvironment, ResolvedNode, usesKeepalived, usesTproxy } from "./config/model";
import { BUNDLE_PATHS } from "./bundle/config-bundle";
import { vipInterface } from "./ha-pair";
import { isNlb, nodeVipTargets } from "./plan/nlb";

export interface NodeArtifacts {
  readonly node: ResolvedNode;
  /** The configuration bundle (applied in place by the agent; never replaces the instance). */
  readonly bundle: ConfigBundle;
  readonly haproxyConfig: string;
  /** HA pair only. */
  readonly keepalivedConf?: string;
  /** HA pair only: run by keepalived's notify_master. */
  readonly takeoverScript?: string;
  /** The bootstrap's input (for inspection and tests). */
  readonly bootstrap: BootstrapSpec;
  /** cloud-init user data (text, before encoding): the machine only. */
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
 * Renders the artifacts of node `nodeName` of `env`. The bundle (and the files read from it) and the
 * encoded user data are rendered when first read, once: the node's construct reads only `userData` (the
 * stack renders the bundle for the config store itself), and rendering both there too cost the synth
 * about 7 ms per node for nothing.
 */
export function nodeArtifacts(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions = {}): NodeArtifacts {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const bootstrap = machineSpec(env, node);
  const userData = renderUserData(bootstrap);
  let bundle: ConfigBundle | undefined;
  let userDataBase64: string | undefined;
  const content = (path: string) => (bundle ??= nodeBundle(env, nodeName, options)).files.find((f) => f.path === path)?.content;
  return {
    node,
    get bundle() {
      return (bundle ??= nodeBundle(env, nodeName, options));
    },
    get haproxyConfig() {
      return content(BUNDLE_PATHS.haproxyConfig)!;
    },
    get keepalivedConf() {
      return content(BUNDLE_PATHS.keepalivedConf);
    },
    get takeoverScript() {
      return content(BUNDLE_PATHS.takeoverScript);
    },
    bootstrap,
    userData,
    get userDataBase64() {
      return (userDataBase64 ??= encodeUserData(userData));
    },
  };
}
