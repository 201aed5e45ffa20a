#!/usr/bin/env bash
# imaging-lb-vip-takeover: keepalived runs this as root (notify_master) when this node becomes VRRP MASTER. It
# finds this node's ENI through IMDSv2 and moves the floating addresses to it with the agent's EC2 client (the
# AWS CLI where the node has no agent), retrying with backoff; it logs to the journal (logger -t LOG_TAG) and
# stderr, and exits non-zero when the last attempt failed.
# Idempotent: running it again changes nothing. It stands down (exit 0) as soon as keepalived no longer
# holds the floating addresses on the interface, i.e. this node left MASTER; --force (a manual run with
# keepalived stopped) skips that check and adds the addresses to the interface itself.
#
# Overrides (environment): IMAGING_LB_IMDS_URL, AWS_ENDPOINT_URL_EC2, IMAGING_LB_AWS_CLI (use this AWS CLI),
# IMAGING_LB_AGENT_LIB (where the agent's package is), IMAGING_LB_IP_CMD,
# IMAGING_LB_SYSFS_NET, IMAGING_LB_LOCK_FILE, IMAGING_LB_MAX_ATTEMPTS, IMAGING_LB_BACKOFF_MS,
# IMAGING_LB_MAX_BACKOFF_MS, IMAGING_LB_HTTP_TIMEOUT_SECONDS.
set -euo pipefail

# The environment's values, written here by imaging-lb (lib/keepalived/notify-script.ts): LOG_TAG, ENV_NAME,
# REGION, IFACE, MODE and its addresses (secondary-ip: PRIVATE_IPS; elastic-ip: ALLOCATION_IDS and
# EIP_PRIVATE_IPS; route-table: VIPS and ROUTE_TABLE_IDS), MASTER_ADDRESS, and the settings above with their
# defaults (IMDS, AGENT_LIB, LOCK_FILE, MAX_ATTEMPTS, BACKOFF_MS, MAX_BACKOFF_MS, HTTP_TIMEOUT).
# @values
EC2_ENDPOINT="${AWS_ENDPOINT_URL_EC2:-}"
AWS_CLI="${IMAGING_LB_AWS_CLI:-}"
IP_CMD="${IMAGING_LB_IP_CMD:-ip}"
SYSFS_NET="${IMAGING_LB_SYSFS_NET:-/sys/class/net}"
# This script owns the retries (each attempt logged); the AWS CLI makes one attempt per call.
export AWS_MAX_ATTEMPTS="${AWS_MAX_ATTEMPTS:-1}"
export AWS_PAGER=""
# keepalived starts scripts with a minimal PATH; the AWS CLI may live in /usr/local/bin or /snap/bin.
export PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"

log() { # log LEVEL MESSAGE: journal (when available) and stderr
  local level="$1"
  shift
  logger -t "$LOG_TAG" -p "daemon.$level" -- "$*" 2>/dev/null || true
  printf '%s[%d] %s: %s\n' "$LOG_TAG" "$$" "$level" "$*" >&2
}

die() {
  log err "$*; takeover of ${ENV_NAME} floating addresses FAILED"
  exit 1
}

for setting in MAX_ATTEMPTS BACKOFF_MS MAX_BACKOFF_MS HTTP_TIMEOUT; do
  if [[ ! "${!setting}" =~ ^[1-9][0-9]{0,6}$ ]]; then
    die "$setting must be a positive integer, got '${!setting}'"
  fi
done

# shellcheck disable=SC2034 # read by the IMDSv2 requests below (imds.sh)
IMDS_TIMEOUT="$HTTP_TIMEOUT"
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
    err="$(tr -s '\n' ' ' <"$ERR_FILE")"
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

# @imds

ec2() { # ec2 SUBCOMMAND ARGS...: one AWS CLI call against the region (and endpoint override, if any)
  local endpoint_args=()
  if [[ -n "$EC2_ENDPOINT" ]]; then
    endpoint_args=(--endpoint-url "$EC2_ENDPOINT")
  fi
  # Niced: the AWS CLI's start-up is the heaviest thing on the node, and keepalived's 1 s health checks must
  # not time out behind it (a starved check faults the node that is taking over). A new MASTER's CPU is
  # otherwise idle, so this costs nothing there.
  local client=("${AWS_CLI:-aws}" ec2)
  if [[ -z "$AWS_CLI" && -f "$AGENT_LIB/imaging_lb_agent/takeover.py" ]]; then
    client=(env PYTHONPATH="$AGENT_LIB" python3 -s -m imaging_lb_agent.takeover)
  fi
  nice -n 10 "${client[@]}" "$@" --region "$REGION" "${endpoint_args[@]}" --output text \
    --cli-connect-timeout "$HTTP_TIMEOUT" --cli-read-timeout "$HTTP_TIMEOUT"
}

add_local_address() { # only on a --force run: keepalived adds (and removes) the addresses itself
  if [[ "$FORCE" == 1 ]]; then
    "$IP_CMD" -4 addr replace "$1/32" dev "$IFACE" || die "could not add $1/32 to $IFACE"
    log info "local address $1/32 on $IFACE"
  fi
}

assign_private_ips() { # assign_private_ips IP...: moves the addresses to this node's ENI (and adds them here on --force)
  local ip
  with_retry "AssignPrivateIpAddresses $* -> ${ENI_ID}" \
    ec2 assign-private-ip-addresses --network-interface-id "$ENI_ID" \
    --private-ip-addresses "$@" --allow-reassignment >/dev/null \
    || die "could not assign $* to ${ENI_ID}"
  for ip in "$@"; do
    add_local_address "$ip"
  done
}

still_master() { # keepalived holds the floating addresses on IFACE exactly while this node is MASTER
  if [[ "$FORCE" == 1 || -z "$MASTER_ADDRESS" ]]; then
    return 0
  fi
  local addresses
  addresses="$("$IP_CMD" -4 -o addr show dev "$IFACE" 2>/dev/null)" || return 1
  [[ " ${addresses//$'\n'/ } " == *" $MASTER_ADDRESS/32 "* ]]
}

stand_down_unless_master() {
  if ! still_master; then
    log notice "no longer MASTER ($MASTER_ADDRESS is not on $IFACE): standing down, the MASTER moves the addresses"
    exit 0
  fi
}

FORCE=0
if [[ "${1:-}" == --force ]]; then
  FORCE=1
fi

exec 9>>"$LOCK_FILE"
flock -w 120 9 || die "another takeover still holds $LOCK_FILE after 120 s"
stand_down_unless_master

log info "becoming MASTER for ${ENV_NAME}: moving floating addresses to this node"
MAC="$(tr '[:upper:]' '[:lower:]' <"$SYSFS_NET/$IFACE/address")" || die "cannot read the MAC of $IFACE"
if [[ ! "$MAC" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]]; then
  die "unexpected MAC '$MAC' for $IFACE"
fi
IMDS_TOKEN="$(with_retry "IMDSv2 token" imds_token 300)" || die "no IMDSv2 token from $IMDS"
ENI_ID="$(with_retry "IMDS interface-id of $MAC" imds_get "$IMDS_TOKEN" "network/interfaces/macs/$MAC/interface-id")" \
  || die "no ENI id for $IFACE ($MAC) from IMDS"
if [[ ! "$ENI_ID" =~ ^eni-[0-9a-f]+$ ]]; then
  die "IMDS returned '$ENI_ID' as the ENI id of $IFACE ($MAC)"
fi

case "$MODE" in
  secondary-ip)
    assign_private_ips "${PRIVATE_IPS[@]}"
    ;;
  elastic-ip)
    floating=()
    for ip in "${EIP_PRIVATE_IPS[@]}"; do
      if [[ -n "$ip" ]]; then floating+=("$ip"); fi
    done
    if (( ${#floating[@]} > 0 )); then
      assign_private_ips "${floating[@]}"
    fi
    for i in "${!ALLOCATION_IDS[@]}"; do
      allocation="${ALLOCATION_IDS[$i]}"
      private_ip_args=()
      if [[ -n "${EIP_PRIVATE_IPS[$i]}" ]]; then
        private_ip_args=(--private-ip-address "${EIP_PRIVATE_IPS[$i]}")
      fi
      with_retry "AssociateAddress ${allocation} -> ${ENI_ID} ${EIP_PRIVATE_IPS[$i]}" \
        ec2 associate-address --allocation-id "$allocation" --network-interface-id "$ENI_ID" \
        "${private_ip_args[@]}" --allow-reassociation >/dev/null \
        || die "could not associate ${allocation} with ${ENI_ID}"
    done
    ;;
  route-table)
    for rtb in "${ROUTE_TABLE_IDS[@]}"; do
      for vip in "${VIPS[@]}"; do
        with_retry "ReplaceRoute ${rtb} ${vip}/32 -> ${ENI_ID}" \
          ec2 replace-route --route-table-id "$rtb" --destination-cidr-block "${vip}/32" \
          --network-interface-id "$ENI_ID" >/dev/null \
          || die "could not point ${vip}/32 in ${rtb} at ${ENI_ID}"
      done
    done
    for vip in "${VIPS[@]}"; do
      add_local_address "$vip"
    done
    ;;
  *)
    die "unknown failover mode '$MODE'"
    ;;
esac

if still_master; then
  log info "takeover complete: ${ENV_NAME} floating addresses now on ${ENI_ID} (${IFACE})"
else
  log warning "left MASTER during the takeover: ${ENV_NAME} floating addresses may stay on ${ENI_ID} until the MASTER's takeover moves them"
fi
