/**
 * Everything rendered for one load balancer node: haproxy.cfg, keepalived.conf + takeover script (HA
 * pair), and the cloud-init user data that installs them. Pure: the constructs call this and only attach
 * the result; the CLI prints the same artifacts.
 */
import { BootstrapInterface, BootstrapSpec, encodeUserData, renderUserData } from "./bootstrap";
import { ResolvedEnvironment, ResolvedNode, STATS_PASSWORD_VAR, usesTproxy } from "./config/model";
import { renderHaproxy } from "./haproxy/build";
import { KEEPALIVED_CONF_PATH, pairFiles, TAKEOVER_SCRIPT_PATH, vipInterface } from "./ha-pair";

export interface NodeArtifacts {
  readonly node: ResolvedNode;
  readonly haproxyConfig: string;
  /** HA pair only. */
  readonly keepalivedConf?: string;
  /** HA pair only: run by keepalived's notify_master. */
  readonly takeoverScript?: string;
  /** The bootstrap's input (for inspection and tests). */
  readonly bootstrap: BootstrapSpec;
  /** cloud-init user data (text, before encoding). */
  readonly userData: string;
  /** What EC2 receives: base64, gzipped first when the text is over the 16 KB user-data limit. */
  readonly userDataBase64: string;
}

/** Packages the nodes get besides HAProxy: socat for the runtime API (drain / maintenance over SSM). */
const OPERATOR_TOOLS = ["socat"];

/** Renders the artifacts of node `nodeName` of `env`. */
export function nodeArtifacts(env: ResolvedEnvironment, nodeName: string): NodeArtifacts {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const haproxyConfig = renderHaproxy(env);
  const pair = pairFiles(env, node);
  // A single node carries its VIPs as static addresses; in a pair keepalived adds them on the MASTER.
  const vipAddresses = pair ? [] : env.vips.map((v) => v.address);
  const clientSide = vipInterface(env);
  const interfaces: BootstrapInterface[] = [
    { name: "eth0", role: "internal", deviceIndex: 0, subnetCidr: node.internalSubnet.cidr, addresses: clientSide === "eth0" ? vipAddresses : [] },
  ];
  if (node.externalSubnet) {
    interfaces.push({ name: "eth1", role: "external", deviceIndex: 1, subnetCidr: node.externalSubnet.cidr, addresses: vipAddresses });
  }
  const bootstrap: BootstrapSpec = {
    envName: env.name,
    nodeName: node.name,
    region: env.region,
    os: env.loadBalancer.os,
    haproxy: env.loadBalancer.haproxy,
    interfaces,
    haproxyConfig,
    tlsCertificates: env.certificates.map((c) => ({ secretArn: c.secretArn, path: c.path })),
    haproxyEnvironment: [{ name: STATS_PASSWORD_VAR, secretArn: env.admin.statsPasswordSecretArn }],
    nonlocalBind: pair !== undefined || env.services.some((s) => s.clientAddress === "source"),
    tproxy: usesTproxy(env),
    cloudWatchLogGroup: env.admin.cloudWatchLogGroup,
    extraFiles: pair
      ? [
          { path: KEEPALIVED_CONF_PATH, content: pair.keepalivedConf, mode: "0640" },
          { path: TAKEOVER_SCRIPT_PATH, content: pair.takeoverScript, mode: "0755" },
        ]
      : [],
    extraPackages: OPERATOR_TOOLS,
    extraServices: pair ? ["keepalived"] : [],
    systemUsers: pair ? ["keepalived_script"] : [],
  };
  const userData = renderUserData(bootstrap);
  return {
    node,
    haproxyConfig,
    keepalivedConf: pair?.keepalivedConf,
    takeoverScript: pair?.takeoverScript,
    bootstrap,
    userData,
    userDataBase64: encodeUserData(userData),
  };
}
