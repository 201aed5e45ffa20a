#!/bin/bash
# imaging-lb-network: names the ENIs eth0 (and, two-arm, eth1) by MAC (IMDSv2) and, two-arm, writes the
# policy routing: one routing table per ENI, so replies leave by the ENI the request came in on.
# Run by imaging-lb-bootstrap and, two-arm, by imaging-lb-network.service when an ENI is hot-plugged.
# Converges: the network is re-applied only when the written configuration changed.
# Node values (LAYOUT, ETH0_*, ETH1_*) come from bootstrap.env, sourced by common.sh; the files are written
# by network.sh beside it, netplan's (Ubuntu, Debian) or systemd-networkd's (AL2023).
set -euo pipefail
umask 022
# shellcheck source=/dev/null
. "${IMAGING_LB_ROOT:-}/usr/local/lib/imaging-lb/common.sh"
mkdir -p "$ROOT/run/lock"
exec 9>"$ROOT/run/lock/imaging-lb-network.lock"
flock 9

# mac_of N: prints the MAC of the ENI whose IMDS device-number is N, nothing when none is attached. An IMDS
# failure is an error (with IMDS's own message), never "not attached": call it as a plain assignment.
mac_of() {
  local macs mac number
  macs="$(imds network/interfaces/macs/)" || die "cannot list the ENIs from IMDS (see above)"
  for mac in $(tr -d / <<<"$macs"); do
    number="$(imds "network/interfaces/macs/$mac/device-number")" || die "cannot read the device-number of ENI $mac from IMDS (see above)"
    if [ "$number" = "$1" ]; then
      echo "$mac"
      return 0
    fi
  done
}

# address_of MAC SUBNET: the ENI's primary private IPv4, after checking IMDS puts the ENI in SUBNET.
address_of() {
  local subnet ips
  subnet="$(imds "network/interfaces/macs/$1/subnet-ipv4-cidr-block")" || die "cannot read the subnet of ENI $1 from IMDS (see above)"
  [ "$subnet" = "$2" ] || die "ENI $1 is in subnet $subnet, the spec says $2: check the ENI's device index"
  ips="$(imds "network/interfaces/macs/$1/local-ipv4s")" || die "cannot read the addresses of ENI $1 from IMDS (see above)"
  echo "${ips%%[[:space:]]*}"
}

# eni N FIELD: the bootstrap.env value ETH<N>_<FIELD> (SUBNET, ROUTER, TABLE, PRIORITY, ADDRESSES).
eni() {
  local name="ETH$1_$2"
  printf '%s' "${!name}"
}

# shellcheck source=/dev/null
. "$ROOT/usr/local/lib/imaging-lb/network.sh"

mac0="$(mac_of 0)"
[ -n "$mac0" ] || die "IMDS lists no ENI with device-number 0"
ip0="$(address_of "$mac0" "$ETH0_SUBNET")"
mac1=""
ip1=""
if [ "$LAYOUT" = two-arm ]; then
  # eth1 is attached after boot (hot-plug): wait for it, bounded; if it comes later still, the udev rule
  # starts imaging-lb-network.service, which runs this script again.
  WAIT_SECONDS="${IMAGING_LB_ENI_WAIT_SECONDS:-300}"
  POLL_SECONDS="${IMAGING_LB_ENI_POLL_SECONDS:-5}"
  deadline=$((SECONDS + WAIT_SECONDS))
  while true; do
    mac1="$(mac_of 1)"
    if [ -n "$mac1" ]; then break; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "no ENI with device-number 1 after ${WAIT_SECONDS}s: eth1 will be configured when it is attached"
      mac1=""
      break
    fi
    log "waiting for the ENI with device-number 1 (eth1)"
    sleep "$POLL_SECONDS"
  done
  if [ -n "$mac1" ]; then
    ip1="$(address_of "$mac1" "$ETH1_SUBNET")"
  fi
fi

write_network "$mac0" "$ip0" "$mac1" "$ip1"
