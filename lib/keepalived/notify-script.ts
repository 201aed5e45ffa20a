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
 * Pure function of its input: imports nothing from cdktf, constructs or the file system.
 */
import { AWS_REGION_PATTERN, NODE_CONTRACT } from "../contract/node-contract";
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
  return [
    "#!/usr/bin/env bash",
    `# Generated by imaging-lb: VIP takeover for environment "${spec.envName}" (mode ${f.mode}).`,
    "# Do not edit by hand: the next deployment overwrites it.",
    "#",
    "# keepalived runs this as root (notify_master) when this node becomes VRRP MASTER. It finds this node's ENI",
    "# through IMDSv2 and moves the floating addresses to it with the agent's EC2 client (the AWS CLI where the",
    "# node has no agent), retrying with backoff; it logs",
    `# to the journal (logger -t ${d.logTag}) and stderr, and exits non-zero when the last attempt failed.`,
    "# Idempotent: running it again changes nothing. It stands down (exit 0) as soon as keepalived no longer",
    "# holds the floating addresses on the interface, i.e. this node left MASTER; --force (a manual run with",
    "# keepalived stopped) skips that check and adds the addresses to the interface itself.",
    "#",
    "# Overrides (environment): IMAGING_LB_IMDS_URL, AWS_ENDPOINT_URL_EC2, IMAGING_LB_AWS_CLI (use this AWS CLI),",
    "# IMAGING_LB_AGENT_LIB (where the agent's package is), IMAGING_LB_IP_CMD,",
    "# IMAGING_LB_SYSFS_NET, IMAGING_LB_LOCK_FILE, IMAGING_LB_MAX_ATTEMPTS, IMAGING_LB_BACKOFF_MS,",
    "# IMAGING_LB_MAX_BACKOFF_MS, IMAGING_LB_HTTP_TIMEOUT_SECONDS.",
    "set -euo pipefail",
    "",
    `readonly LOG_TAG=${d.logTag}`,
    `readonly ENV_NAME=${spec.envName}`,
    `readonly REGION=${spec.region}`,
    `readonly IFACE=${spec.interfaceName}`,
    ...modeVariables(f),
    `readonly MASTER_ADDRESS=${masterAddress(f) ?? '""'}`,
    `IMDS_URL="\${IMAGING_LB_IMDS_URL:-${d.imdsUrl}}"`,
    'EC2_ENDPOINT="${AWS_ENDPOINT_URL_EC2:-}"',
    "# The agent's EC2 client (one Python start, no botocore) when the node has it, else the AWS CLI.",
    `AGENT_LIB="\${IMAGING_LB_AGENT_LIB:-${NODE_CONTRACT.paths.agentPackageDir}}"`,
    'AWS_CLI="${IMAGING_LB_AWS_CLI:-}"',
    'IP_CMD="${IMAGING_LB_IP_CMD:-ip}"',
    'SYSFS_NET="${IMAGING_LB_SYSFS_NET:-/sys/class/net}"',
    `LOCK_FILE="\${IMAGING_LB_LOCK_FILE:-${spec.lockFile ?? d.lockFile}}"`,
    `MAX_ATTEMPTS="\${IMAGING_LB_MAX_ATTEMPTS:-${spec.maxAttempts ?? d.maxAttempts}}"`,
    `BACKOFF_MS="\${IMAGING_LB_BACKOFF_MS:-${spec.initialBackoffMs ?? d.initialBackoffMs}}"`,
    `MAX_BACKOFF_MS="\${IMAGING_LB_MAX_BACKOFF_MS:-${spec.maxBackoffMs ?? d.maxBackoffMs}}"`,
    `HTTP_TIMEOUT="\${IMAGING_LB_HTTP_TIMEOUT_SECONDS:-${spec.httpTimeoutSeconds ?? d.httpTimeoutSeconds}}"`,
    "# This script owns the retries (each attempt logged); the AWS CLI makes one attempt per call.",
    'export AWS_MAX_ATTEMPTS="${AWS_MAX_ATTEMPTS:-1}"',
    'export AWS_PAGER=""',
    '# keepalived starts scripts with a minimal PATH; the AWS CLI may live in /usr/local/bin or /snap/bin.',
    'export PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"',
    "",
    COMMON_FUNCTIONS,
    "",
    ...modeBody(f),
    "",
    "if still_master; then",
    '  log info "takeover complete: ${ENV_NAME} floating addresses now on ${ENI_ID} (${IFACE})"',
    "else",
    '  log warning "left MASTER during the takeover: ${ENV_NAME} floating addresses may stay on ${ENI_ID} until the MASTER\'s takeover moves them"',
    "fi",
    "",
  ].join("\n");
}

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

/** The steps of a mode, after the common prologue has set ENI_ID. */
function modeBody(f: VipFailover): string[] {
  switch (f.mode) {
    case "secondary-ip":
      return [
        'with_retry "AssignPrivateIpAddresses ${PRIVATE_IPS[*]} -> ${ENI_ID}" \\',
        '  ec2 assign-private-ip-addresses --network-interface-id "$ENI_ID" \\',
        '  --private-ip-addresses "${PRIVATE_IPS[@]}" --allow-reassignment >/dev/null \\',
        '  || die "could not assign ${PRIVATE_IPS[*]} to ${ENI_ID}"',
        'for ip in "${PRIVATE_IPS[@]}"; do',
        '  add_local_address "$ip"',
        "done",
      ];
    case "elastic-ip":
      return [
        'floating=()',
        'for ip in "${EIP_PRIVATE_IPS[@]}"; do',
        '  if [[ -n "$ip" ]]; then floating+=("$ip"); fi',
        "done",
        'if (( ${#floating[@]} > 0 )); then',
        '  with_retry "AssignPrivateIpAddresses ${floating[*]} -> ${ENI_ID}" \\',
        '    ec2 assign-private-ip-addresses --network-interface-id "$ENI_ID" \\',
        '    --private-ip-addresses "${floating[@]}" --allow-reassignment >/dev/null \\',
        '    || die "could not assign ${floating[*]} to ${ENI_ID}"',
        '  for ip in "${floating[@]}"; do',
        '    add_local_address "$ip"',
        "  done",
        "fi",
        'for i in "${!ALLOCATION_IDS[@]}"; do',
        '  allocation="${ALLOCATION_IDS[$i]}"',
        '  private_ip_args=()',
        '  if [[ -n "${EIP_PRIVATE_IPS[$i]}" ]]; then',
        '    private_ip_args=(--private-ip-address "${EIP_PRIVATE_IPS[$i]}")',
        "  fi",
        '  with_retry "AssociateAddress ${allocation} -> ${ENI_ID} ${EIP_PRIVATE_IPS[$i]}" \\',
        '    ec2 associate-address --allocation-id "$allocation" --network-interface-id "$ENI_ID" \\',
        '    "${private_ip_args[@]}" --allow-reassociation >/dev/null \\',
        '    || die "could not associate ${allocation} with ${ENI_ID}"',
        "done",
      ];
    case "route-table":
      return [
        'for rtb in "${ROUTE_TABLE_IDS[@]}"; do',
        '  for vip in "${VIPS[@]}"; do',
        '    with_retry "ReplaceRoute ${rtb} ${vip}/32 -> ${ENI_ID}" \\',
        '      ec2 replace-route --route-table-id "$rtb" --destination-cidr-block "${vip}/32" \\',
        '      --network-interface-id "$ENI_ID" >/dev/null \\',
        '      || die "could not point ${vip}/32 in ${rtb} at ${ENI_ID}"',
        "  done",
        "done",
        'for vip in "${VIPS[@]}"; do',
        '  add_local_address "$vip"',
        "done",
      ];
  }
}

/** Logging, retries, IMDSv2, the EC2 wrapper and the ENI lookup: the same in every mode. */
const COMMON_FUNCTIONS = `log() { # log LEVEL MESSAGE: journal (when available) and stderr
  local level="$1"
  shift
  logger -t "$LOG_TAG" -p "daemon.$level" -- "$*" 2>/dev/null || true
  printf '%s[%d] %s: %s\\n' "$LOG_TAG" "$$" "$level" "$*" >&2
}

die() {
  log err "$*; takeover of \${ENV_NAME} floating addresses FAILED"
  exit 1
}

for setting in MAX_ATTEMPTS BACKOFF_MS MAX_BACKOFF_MS HTTP_TIMEOUT; do
  if [[ ! "\${!setting}" =~ ^[1-9][0-9]{0,6}$ ]]; then
    die "$setting must be a positive integer, got '\${!setting}'"
  fi
done

ERR_FILE="$(mktemp)"
trap 'rm -f "$ERR_FILE"' EXIT

with_retry() { # with_retry DESCRIPTION COMMAND...: stdout passed through, stderr logged
  local what="$1"
  shift
  local attempt=1 delay_ms="$BACKOFF_MS" out err
  while true; do
    if [[ "$1" == ec2 ]]; then
      stand_down_unless_master
    fi
    if out="$("$@" 2>"$ERR_FILE")"; then
      log info "$what: ok (attempt $attempt/$MAX_ATTEMPTS)"
      printf '%s' "$out"
      return 0
    fi
    err="$(tr -s '\\n' ' ' <"$ERR_FILE")"
    if (( attempt >= MAX_ATTEMPTS )); then
      log err "$what: attempt $attempt/$MAX_ATTEMPTS failed, giving up: $err"
      return 1
    fi
    log warning "$what: attempt $attempt/$MAX_ATTEMPTS failed, retrying in $delay_ms ms: $err"
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    attempt=$((attempt + 1))
    delay_ms=$((delay_ms * 2))
    if (( delay_ms > MAX_BACKOFF_MS )); then
      delay_ms="$MAX_BACKOFF_MS"
    fi
  done
}

imds_token() { # IMDSv2 session token; IMDSv1 (no token) is never used
  curl --silent --show-error --fail --noproxy '*' --max-time "$HTTP_TIMEOUT" -X PUT \\
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS_URL/latest/api/token"
}

imds_get() { # imds_get PATH-UNDER-meta-data
  curl --silent --show-error --fail --noproxy '*' --max-time "$HTTP_TIMEOUT" \\
    -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS_URL/latest/meta-data/$1"
}

ec2() { # ec2 SUBCOMMAND ARGS...: one AWS CLI call against the region (and endpoint override, if any)
  local endpoint_args=()
  if [[ -n "$EC2_ENDPOINT" ]]; then
    endpoint_args=(--endpoint-url "$EC2_ENDPOINT")
  fi
  # Niced: the AWS CLI's start-up is the heaviest thing on the node, and keepalived's 1 s health checks must
  # not time out behind it (a starved check faults the node that is taking over). A new MASTER's CPU is
  # otherwise idle, so this costs nothing there.
  local client=("\${AWS_CLI:-aws}" ec2)
  if [[ -z "$AWS_CLI" && -f "$AGENT_LIB/imaging_lb_agent/takeover.py" ]]; then
    client=(env PYTHONPATH="$AGENT_LIB" python3 -s -m imaging_lb_agent.takeover)
  fi
  nice -n 10 "\${client[@]}" "$@" --region "$REGION" "\${endpoint_args[@]}" --output text \\
    --cli-connect-timeout "$HTTP_TIMEOUT" --cli-read-timeout "$HTTP_TIMEOUT"
}

add_local_address() { # only on a --force run: keepalived adds (and removes) the addresses itself
  if [[ "$FORCE" == 1 ]]; then
    "$IP_CMD" -4 addr replace "$1/32" dev "$IFACE" || die "could not add $1/32 to $IFACE"
    log info "local address $1/32 on $IFACE"
  fi
}

still_master() { # keepalived holds the floating addresses on IFACE exactly while this node is MASTER
  if [[ "$FORCE" == 1 || -z "$MASTER_ADDRESS" ]]; then
    return 0
  fi
  local addresses
  addresses="$("$IP_CMD" -4 -o addr show dev "$IFACE" 2>/dev/null)" || return 1
  [[ " \${addresses//$'\\n'/ } " == *" $MASTER_ADDRESS/32 "* ]]
}

stand_down_unless_master() {
  if ! still_master; then
    log notice "no longer MASTER ($MASTER_ADDRESS is not on $IFACE): standing down, the MASTER moves the addresses"
    exit 0
  fi
}

FORCE=0
if [[ "\${1:-}" == --force ]]; then
  FORCE=1
fi

exec 9>>"$LOCK_FILE"
flock -w 120 9 || die "another takeover still holds $LOCK_FILE after 120 s"
stand_down_unless_master

log info "becoming MASTER for \${ENV_NAME}: moving floating addresses to this node"
MAC="$(tr '[:upper:]' '[:lower:]' <"$SYSFS_NET/$IFACE/address")" || die "cannot read the MAC of $IFACE"
if [[ ! "$MAC" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]]; then
  die "unexpected MAC '$MAC' for $IFACE"
fi
IMDS_TOKEN="$(with_retry "IMDSv2 token" imds_token)" || die "no IMDSv2 token from $IMDS_URL"
ENI_ID="$(with_retry "IMDS interface-id of $MAC" imds_get "network/interfaces/macs/$MAC/interface-id")" \\
  || die "no ENI id for $IFACE ($MAC) from IMDS"
if [[ ! "$ENI_ID" =~ ^eni-[0-9a-f]+$ ]]; then
  die "IMDS returned '$ENI_ID' as the ENI id of $IFACE ($MAC)"
fi`;

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
