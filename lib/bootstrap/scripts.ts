/**
 * The bootstrap's shell scripts are real files, `lib/shell/*.sh` (embedded at build time by
 * `scripts/embed-shell.mjs`), the same on every node; the one place a node's values reach them is
 * {@link renderBootstrapEnv}: `bootstrap.env`, shell assignments that `common.sh` (the library every script
 * sources) loads. Each script is plain bash (`set -euo pipefail`, quoted heredocs, idempotent) and is run for
 * real in a sandbox by the tests.
 *
 * The scripts name the paths of the files they source (BOOTSTRAP_PATHS' library, imds, settings, networkWriter,
 * tproxyStep, shipLogsStep) themselves; test/bootstrap.test.ts checks the two agree.
 *
 * Sandbox contract (tests): every path a script writes is prefixed with `$IMAGING_LB_ROOT` (empty on the
 * load balancer), the IMDS address comes from `$IMAGING_LB_IMDS_URL`, and every command that changes the
 * host (apt-get, dnf, snap, systemctl, ip, iptables, sysctl, netplan, networkctl, udevadm, hostnamectl,
 * aws, dpkg) is a plain PATH lookup, so recording stubs earlier on PATH replace them. `haproxy -c` is
 * meant to stay real.
 */
import { NODE_CONTRACT } from "../contract/node-contract";
import { isAptOs, type ResolvedBootstrap, type ResolvedInterface } from "./bootstrap-spec";
import { nodePackages } from "./packages";

/** Where the bootstrap puts things on the load balancer. */
export const BOOTSTRAP_PATHS = {
  /** Main script, run by cloud-init `runcmd`. */
  bootstrap: "/usr/local/sbin/imaging-lb-bootstrap",
  /** ENI naming + policy routing; also run by `imaging-lb-network.service` when an ENI is hot-plugged. */
  network: "/usr/local/sbin/imaging-lb-network",
  /** HAProxy's environment (secrets such as the stats password), mode 0600, loaded by haproxy.service. */
  haproxyEnv: NODE_CONTRACT.paths.haproxyEnv,
  /**
   * The agent's launcher: starts the agent the last good configuration bundle carries (imaging-lb-agent.service,
   * and the first apply at boot); on a new node the machine's loader fetches that agent first.
   */
  agent: NODE_CONTRACT.paths.launcher,
  /** The agent's machine settings: bucket, key prefix, node, environment, region. */
  agentEnv: NODE_CONTRACT.paths.agentEnv,
  /** TProxy marking and local delivery; run at boot by `imaging-lb-tproxy.service`. */
  tproxy: "/usr/local/sbin/imaging-lb-tproxy",
  /** Shell functions shared by the scripts (sourced); the scripts name this path themselves. */
  library: "/usr/local/lib/imaging-lb/common.sh",
  /** The IMDSv2 requests (sourced by the library; the takeover script carries a copy). */
  imds: "/usr/local/lib/imaging-lb/imds.sh",
  /** This node's values for the scripts (sourced by the library, which names this path itself). */
  settings: "/usr/local/lib/imaging-lb/bootstrap.env",
  /** The network script's writer for the node's OS: netplan's or systemd-networkd's (sourced). */
  networkWriter: "/usr/local/lib/imaging-lb/network.sh",
  /** The bootstrap's optional steps, installed only on the nodes that run them (sourced). */
  tproxyStep: "/usr/local/lib/imaging-lb/bootstrap-tproxy.sh",
  shipLogsStep: "/usr/local/lib/imaging-lb/bootstrap-ship-logs.sh",
  /** The node's own files (agent settings, HAProxy environment, the bundle's secrets list). */
  stage: "/etc/imaging-lb",
} as const;

/** Quotes a value for bash: as-is when it has only safe characters, else single-quoted. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9._/:@%+=,-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The packages the bootstrap installs (or, on a baked image, checks), by the OS's names (haproxy first). */
function packages(r: ResolvedBootstrap): readonly string[] {
  return nodePackages({
    os: r.os,
    haproxyVersion: r.haproxyVersion,
    tproxy: r.tproxy,
    cloudWatchAgent: r.cloudWatchLogGroup !== undefined,
    extra: [...r.extraPackages, ...r.extraServices],
    awsCli: r.needsAwsCli,
  }).packages;
}

/** `ip rule` priority of an ENI's `from <address>` rule (+1: eth1's `from <subnet>` rule for floating VIPs). */
function rulePriority(eni: ResolvedInterface): number {
  return eni.table + 10 * eni.deviceIndex;
}

/**
 * `bootstrap.env`: every node-specific value the bootstrap's scripts read, as bash assignments (values
 * shell-quoted, lists as arrays). The scripts decide by these at run time: OS (apt or dnf, netplan or
 * systemd-networkd), LAYOUT (one-arm or two-arm), TPROXY, CLOUDWATCH_LOG_GROUP.
 */
export function renderBootstrapEnv(r: ResolvedBootstrap): string {
  const q = shellQuote;
  const flag = (on: boolean): string => (on ? "1" : "0");
  const array = (values: readonly string[]): string => `(${values.map(q).join(" ")})`;
  const value = (v: string | undefined): string => (v === undefined || v === "" ? '""' : q(v));
  // A single two-arm node holds its VIPs as static addresses of eth1, which EC2 may attach after HAProxy
  // started: HAProxy must be able to bind them before they exist.
  const lateVips = r.interfaces.some((i) => i.deviceIndex === 1 && i.addresses.length > 0);
  const extraPath = [
    r.os === "ubuntu-24.04" && r.needsAwsCli && "/snap/bin",
    r.cloudWatchLogGroup !== undefined && "/opt/aws/amazon-cloudwatch-agent/bin",
  ].filter((p): p is string => typeof p === "string");
  const eni = (e: ResolvedInterface): string[] => {
    const n = `ETH${e.deviceIndex}`;
    return [
      `${n}_SUBNET=${q(e.subnetCidr)} ${n}_ROUTER=${q(e.router)} ${n}_TABLE=${e.table} ${n}_PRIORITY=${rulePriority(e)}`,
      `${n}_ADDRESSES=${value(e.addresses.join(" "))}`,
    ];
  };
  return [
    "# shellcheck shell=bash disable=SC2034",
    `# imaging-lb bootstrap settings of ${r.envName}/${r.nodeName}: the node's values for the scripts, sourced by`,
    "# common.sh. Generated by imaging-lb: do not edit.",
    `ENV_NAME=${q(r.envName)} NODE_NAME=${q(r.nodeName)} REGION=${q(r.region)}`,
    `OS=${q(r.os)} LAYOUT=${r.layout}`,
    "# Packages by the OS's names; an apt pin and PPA of the HAProxy LTS series (empty: none).",
    `PACKAGES=${array(packages(r))}`,
    `HAPROXY_PIN=${value(isAptOs(r.os) ? r.haproxyVersion : undefined)} HAPROXY_PPA=${value(r.haproxySource === "ppa" ? r.haproxyVersion : undefined)}`,
    `AWS_CLI_SNAP=${flag(r.needsAwsCli && r.os === "ubuntu-24.04")} EXTRA_PATH=${value(extraPath.join(":"))}`,
    "# stock: install them; baked: an image of imaging-lb's recipe, checked against its manifest and HAProxy's series.",
    `IMAGE=${r.image} IMAGE_MANIFEST=${NODE_CONTRACT.paths.imageManifest} HAPROXY_SERIES=${value(r.haproxyVersion)}`,
    `SYSTEM_USERS=${array(r.systemUsers)}`,
    `NONLOCAL_BIND=${flag(r.nonlocalBind || lateVips)} TPROXY=${flag(r.tproxy)} CLOUDWATCH_LOG_GROUP=${value(r.cloudWatchLogGroup)}`,
    "# The configuration bundle's bucket (empty: the stack's, imaging-lb-<environment>-<account>), key prefix, status.",
    `CONFIG_BUCKET=${value(r.configStore.bucket)} CONFIG_PREFIX=${q(r.configStore.prefix)}`,
    `STATUS_KEY=${q(`${r.configStore.prefix}/status/${r.nodeName}.json`)}`,
    "# The ENIs: subnet, its router, policy routing table and rule priority (two-arm), /32 addresses.",
    ...r.interfaces.flatMap(eni),
    "# Paths on the node.",
    `NETWORK=${BOOTSTRAP_PATHS.network} TPROXY_SCRIPT=${BOOTSTRAP_PATHS.tproxy} AGENT=${BOOTSTRAP_PATHS.agent}`,
    `AGENT_ENV=${BOOTSTRAP_PATHS.agentEnv} HAPROXY_ENV=${BOOTSTRAP_PATHS.haproxyEnv} STAGE=${BOOTSTRAP_PATHS.stage}`,
    "",
  ].join("\n");
}
