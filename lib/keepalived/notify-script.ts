/**
 * The `notify_master` script that moves an imaging-lb pair's floating addresses to the node that just became
 * VRRP MASTER, through IMDSv2 and the EC2 API (AWS CLI), in one of three modes:
 *
 * - `secondary-ip`: `AssignPrivateIpAddresses --allow-reassignment` on this node's ENI, then the address on
 *   the OS interface. Both nodes' ENIs in one subnet (so one AZ).
 * - `elastic-ip`: `AssociateAddress --allow-reassociation` of each Elastic IP to this node's ENI, optionally to
 *   a floating private IP that the script first assigns to the ENI (as in secondary-ip mode).
 * - `route-table`: `ReplaceRoute <vip>/32 -> this node's ENI` in every listed route table, for an overlay VIP
 *   outside the VPC CIDR (works across AZs; source/dest check off on both ENIs; Terraform creates the routes,
 *   the script only replaces them).
 *
 * **This node's ENI id comes from IMDSv2 at run time** (the MAC of the OS interface from sysfs, then
 * `meta-data/network/interfaces/macs/<mac>/interface-id`), not baked in by the renderer: both nodes then run
 * the byte-identical script, the rendered artifact does not depend on ENI ids that exist only after
 * `terraform apply` (no resource cycle between an instance's user data and its own ENI), and a replaced ENI
 * needs no re-render. IMDSv1 is never used: every metadata request carries a session token.
 *
 * Every EC2 and IMDS call is retried with exponential backoff (the AWS CLI's own retries are switched off
 * with `AWS_MAX_ATTEMPTS=1` unless set, so each attempt is logged); everything is logged to the journal via
 * `logger -t imaging-lb-vip` and to stderr; the script exits non-zero once the last attempt failed. Every step
 * is idempotent (`--allow-reassignment`, `--allow-reassociation`, `ReplaceRoute`), so a second run is harmless,
 * and a lock serialises overlapping runs when VRRP flaps.
 *
 * **A takeover never outlives this node's MASTER state.** keepalived forks a new `notify_master` run at every
 * entry into MASTER and does not stop it when the node leaves MASTER; a run that waited for the lock, or that
 * was still retrying, would otherwise move the addresses in EC2 away from the node that is now MASTER (seen on
 * the booted pair: a run queued on a node that had since entered FAULT started after its peer had become MASTER
 * and moved the VIPs back to the faulted node, in EC2 and on its interface). keepalived holds
 * the floating addresses on the interface exactly while it is MASTER (`virtual_ipaddress`), so before each EC2
 * attempt the script checks that the first of them is still there, and stands down (exit 0, logged) when it is
 * not. For the same reason the script no longer adds local addresses itself: re-adding an address keepalived
 * had just removed would make a BACKUP answer for the VIP. `--force` (an operator's manual run, keepalived
 * stopped) skips the check and adds the addresses.
 *
 * **The EC2 calls go through the agent's own client** (`python3 -m imaging_lb_agent.takeover`, the agent's
 * SigV4 signer, same arguments as `aws ec2`) when the node has the agent's package: the AWS CLI's start costs
 * about 0.6 s of CPU per call, on the failover's critical path. Without the package (or with
 * `IMAGING_LB_AWS_CLI` set) the script uses the AWS CLI.
 *
 * Run-time overrides (environment; the tests use them to point the script at simulated services):
 * `IMAGING_LB_IMDS_URL`, `AWS_ENDPOINT_URL_EC2` (passed as `--endpoint-url`, which AWS CLI versions before
 * 2.13 do not read themselves), `IMAGING_LB_AWS_CLI`, `IMAGING_LB_AGENT_LIB`, `IMAGING_LB_IP_CMD`, `IMAGING_LB_SYSFS_NET`,
 * `IMAGING_LB_LOCK_FILE`, `IMAGING_LB_MAX_ATTEMPTS`, `IMAGING_LB_BACKOFF_MS`, `IMAGING_LB_MAX_BACKOFF_MS`,
 * `IMAGING_LB_HTTP_TIMEOUT_SECONDS`.
 *
 * IAM: the instance role needs exactly the actions of its mode (`ec2:AssignPrivateIpAddresses`,
 * `ec2:AssociateAddress`, `ec2:ReplaceRoute`) on the pair's ENIs, Elastic IP allocations and route tables.
 * Private subnets need an `ec2` interface VPC endpoint.
 *
 * The script is a real file, `lib/shell/imaging-lb-vip-takeover.sh` (embedded at build time); the renderer
 * writes the environment's values in one place, the block replacing its `# @values` line, and the script
 * picks the mode's steps at run time. It does not source the bootstrap's `common.sh`: it comes with the
 * configuration bundle (changed in place) while `common.sh` is the machine's (changed only with a new
 * instance), and keepalived runs it with a bare environment; so it carries its own logging and retries, and
 * a copy of `lib/shell/imds.sh` (the IMDSv2 requests the bootstrap sources) in place of its `# @imds` line.
 *
 * Pure function of its input: imports nothing from cdktf, constructs or the file system.
 */
import { AWS_REGION_PATTERN, NODE_CONTRACT } from "../contract/node-contract";
import { imagingLbVipTakeover, imds } from "../shell/embedded.generated";
import {
  IssueList,
  checkAbsolutePath,
  checkDistinct,
  checkEnvName,
  checkInteger,
  checkInterfaceName,
  checkIpv4,
  checkIpv4List,
} from "./validation";

/** Move floating secondary private IPs to this node's ENI (`AssignPrivateIpAddresses`). */
export interface SecondaryIpFailover {
  /** Discriminant. */
  readonly mode: "secondary-ip";
  /** The floating private IPs, in the subnet of both nodes' ENIs. */
  readonly privateIps: readonly string[];
}

/** One Elastic IP that follows the MASTER. */
export interface ElasticIpAssociation {
  /** The Elastic IP's allocation id, e.g. `eipalloc-0123456789abcdef0`. */
  readonly allocationId: string;
  /**
   * A floating private IP (same subnet as both ENIs) that the script first assigns to this node's ENI and
   * then maps the Elastic IP to; omitted maps it to the ENI's primary private IP.
   * @default the ENI's primary private IP
   */
  readonly privateIpAddress?: string;
}

/** Re-associate Elastic IPs with this node's ENI (`AssociateAddress`). */
export interface ElasticIpFailover {
  /** Discriminant. */
  readonly mode: "elastic-ip";
  /** The Elastic IPs to move, in this order. */
  readonly associations: readonly ElasticIpAssociation[];
}

/** Point `<vip>/32` routes at this node's ENI (`ReplaceRoute`): an overlay VIP outside the VPC CIDR. */
export interface RouteTableFailover {
  /** Discriminant. */
  readonly mode: "route-table";
  /** The overlay VIPs, outside the VPC CIDR. */
  readonly vips: readonly string[];
  /** Every route table whose subnets' clients reach the VIPs, e.g. `rtb-0123456789abcdef0`. */
  readonly routeTableIds: readonly string[];
}

/** How the floating addresses move between the nodes: a closed choice. */
export type VipFailover = SecondaryIpFailover | ElasticIpFailover | RouteTableFailover;

/** Input of {@link renderNotifyScript}; the same for both nodes of the pair. */
export interface NotifyScriptSpec {
  /** Environment name, shown in logs. */
  readonly envName: string;
  /** AWS region of the pair, e.g. `eu-west-1`. */
  readonly region: string;
  /** OS interface whose ENI receives the floating addresses (eth1 in a two-arm layout), e.g. `eth0`. */
  readonly interfaceName: string;
  /** The failover mode and its addresses. */
  readonly failover: VipFailover;
  /**
   * Attempts per EC2 or IMDS call before the script gives up and exits non-zero.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Milliseconds before the first retry; doubled after each failed attempt.
   * @default 1000
   */
  readonly initialBackoffMs?: number;
  /**
   * Upper bound of the delay between two attempts, in milliseconds.
   * @default 8000
   */
  readonly maxBackoffMs?: number;
  /**
   * Seconds one HTTP request (IMDS, or EC2 connect and read each) may take.
   * @default 5
   */
  readonly httpTimeoutSeconds?: number;
  /**
   * Lock file that serialises overlapping runs.
   * @default "/run/lock/imaging-lb-vip.lock"
   */
  readonly lockFile?: string;
}

/** The defaults applied by {@link renderNotifyScript}, exported for documentation and tests. */
export const NOTIFY_SCRIPT_DEFAULTS = {
  maxAttempts: 5,
  initialBackoffMs: 1000,
  maxBackoffMs: 8000,
  httpTimeoutSeconds: 5,
  lockFile: "/run/lock/imaging-lb-vip.lock",
  imdsUrl: "http://169.254.169.254",
  logTag: "imaging-lb-vip",
} as const;

const EIP_ALLOCATION = /^eipalloc-[0-9a-f]{8,17}$/;
const ROUTE_TABLE = /^rtb-[0-9a-f]{8,17}$/;

/**
 * Renders the bash VIP takeover script for keepalived's `notify_master`; throws {@link HaSpecError} listing
 * every invalid input.
 *
 * @example
 * renderNotifyScript({
 *   envName: "prod", region: "eu-west-1", interfaceName: "eth0",
 *   failover: { mode: "secondary-ip", privateIps: ["10.0.1.50"] },
 * });
 */
export function renderNotifyScript(spec: NotifyScriptSpec): string {
  validate(spec);
  const d = NOTIFY_SCRIPT_DEFAULTS;
  const f = spec.failover;
  const values = [
    `readonly LOG_TAG=${d.logTag}`,
    `readonly ENV_NAME=${spec.envName}`,
    `readonly REGION=${spec.region}`,
    `readonly IFACE=${spec.interfaceName}`,
    `readonly MODE=${f.mode}`,
    ...modeVariables(f),
    `readonly MASTER_ADDRESS=${masterAddress(f) ?? '""'}`,
    `IMDS="\${IMAGING_LB_IMDS_URL:-${d.imdsUrl}}"`,
    "# The agent's EC2 client (one Python start, no botocore) when the node has it, else the AWS CLI.",
    `AGENT_LIB="\${IMAGING_LB_AGENT_LIB:-${NODE_CONTRACT.paths.agentPackageDir}}"`,
    `LOCK_FILE="\${IMAGING_LB_LOCK_FILE:-${spec.lockFile ?? d.lockFile}}"`,
    `MAX_ATTEMPTS="\${IMAGING_LB_MAX_ATTEMPTS:-${spec.maxAttempts ?? d.maxAttempts}}"`,
    `BACKOFF_MS="\${IMAGING_LB_BACKOFF_MS:-${spec.initialBackoffMs ?? d.initialBackoffMs}}"`,
    `MAX_BACKOFF_MS="\${IMAGING_LB_MAX_BACKOFF_MS:-${spec.maxBackoffMs ?? d.maxBackoffMs}}"`,
    `HTTP_TIMEOUT="\${IMAGING_LB_HTTP_TIMEOUT_SECONDS:-${spec.httpTimeoutSeconds ?? d.httpTimeoutSeconds}}"`,
  ];
  const generated = [
    `# Generated by imaging-lb: VIP takeover for environment "${spec.envName}" (mode ${f.mode}).`,
    "# Do not edit by hand: the next deployment overwrites it.",
    "#",
  ];
  const [shebang, ...rest] = imagingLbVipTakeover.split("\n");
  return [shebang, ...generated, ...rest]
    .join("\n")
    .replace(VALUES_MARKER, () => values.join("\n") + "\n")
    .replace(IMDS_MARKER, () => imds.replace(/^# shellcheck shell=bash\n/, ""));
}

/** The lines of lib/shell/imaging-lb-vip-takeover.sh that {@link renderNotifyScript} replaces: the values, and imds.sh. */
const VALUES_MARKER = "# @values\n";
const IMDS_MARKER = "# @imds\n";

/**
 * The floating address keepalived holds on the interface while MASTER, whose presence the script checks; undefined
 * when the mode moves no private address (Elastic IPs on the ENI's primary address only): then nothing tells a
 * stale run apart and the script always runs to the end.
 */
function masterAddress(f: VipFailover): string | undefined {
  switch (f.mode) {
    case "secondary-ip":
      return f.privateIps[0];
    case "elastic-ip":
      return f.associations.find((a) => a.privateIpAddress !== undefined)?.privateIpAddress;
    case "route-table":
      return f.vips[0];
  }
}

/** The bash arrays a mode needs, one quoted element per value. */
function modeVariables(f: VipFailover): string[] {
  const array = (name: string, values: readonly string[]): string =>
    `readonly ${name}=(${values.map((v) => `"${v}"`).join(" ")})`;
  switch (f.mode) {
    case "secondary-ip":
      return [array("PRIVATE_IPS", f.privateIps)];
    case "elastic-ip":
      return [
        array("ALLOCATION_IDS", f.associations.map((a) => a.allocationId)),
        "# The floating private IP of each Elastic IP, or \"\" for the ENI's primary private IP.",
        array("EIP_PRIVATE_IPS", f.associations.map((a) => a.privateIpAddress ?? "")),
      ];
    case "route-table":
      return [array("VIPS", f.vips), array("ROUTE_TABLE_IDS", f.routeTableIds)];
  }
}

function validate(spec: NotifyScriptSpec): void {
  const issues = new IssueList();
  checkEnvName(issues, "envName", spec.envName);
  if (typeof spec.region !== "string" || !AWS_REGION_PATTERN.test(spec.region)) {
    issues.add("region", "an AWS region such as eu-west-1", spec.region);
  }
  checkInterfaceName(issues, "interfaceName", spec.interfaceName);
  checkInteger(issues, "maxAttempts", spec.maxAttempts, 1, 100, true);
  checkInteger(issues, "initialBackoffMs", spec.initialBackoffMs, 1, 600_000, true);
  checkInteger(issues, "maxBackoffMs", spec.maxBackoffMs, 1, 600_000, true);
  checkInteger(issues, "httpTimeoutSeconds", spec.httpTimeoutSeconds, 1, 300, true);
  if (spec.lockFile !== undefined) {
    checkAbsolutePath(issues, "lockFile", spec.lockFile);
  }
  const f = spec.failover as VipFailover | undefined;
  switch (f?.mode) {
    case "secondary-ip":
      checkIpv4List(issues, "failover.privateIps", f.privateIps);
      break;
    case "elastic-ip":
      if (!Array.isArray(f.associations) || f.associations.length === 0) {
        issues.add("failover.associations", "at least one Elastic IP association", f.associations);
        break;
      }
      f.associations.forEach((a, i) => {
        if (!EIP_ALLOCATION.test(String(a.allocationId))) {
          issues.add(`failover.associations[${i}].allocationId`, "an id such as eipalloc-0123456789abcdef0", a.allocationId);
        }
        if (a.privateIpAddress !== undefined) {
          checkIpv4(issues, `failover.associations[${i}].privateIpAddress`, a.privateIpAddress);
        }
      });
      checkDistinct(issues, "failover.associations[].allocationId", f.associations.map((a) => a.allocationId));
      checkDistinct(
        issues,
        "failover.associations[].privateIpAddress",
        f.associations.flatMap((a) => (a.privateIpAddress === undefined ? [] : [a.privateIpAddress])),
      );
      break;
    case "route-table":
      checkIpv4List(issues, "failover.vips", f.vips);
      if (!Array.isArray(f.routeTableIds) || f.routeTableIds.length === 0) {
        issues.add("failover.routeTableIds", "at least one route table id", f.routeTableIds);
        break;
      }
      f.routeTableIds.forEach((id, i) => {
        if (!ROUTE_TABLE.test(String(id))) {
          issues.add(`failover.routeTableIds[${i}]`, "an id such as rtb-0123456789abcdef0", id);
        }
      });
      checkDistinct(issues, "failover.routeTableIds", f.routeTableIds);
      break;
    default:
      issues.add("failover.mode", '"secondary-ip", "elastic-ip" or "route-table"', (f as { mode?: unknown } | undefined)?.mode);
  }
  issues.throwIfAny(`notify script spec for ${String(spec.envName)}`);
}
