#!/usr/bin/env bash
# Installs the real tools the tests run (Debian/Ubuntu packages). Idempotent: installs only what is
# missing. Needs root. Tests never skip a missing tool: they fail, naming the package to install.
set -euo pipefail

packages=(
  haproxy          # haproxy -dW -c on every rendered config; the data plane in the e2e tests
  keepalived       # keepalived -t on rendered configs; VRRP in the HA e2e test
  orthanc          # real DICOM + HTTP imaging servers behind the load balancer
  dcmtk            # echoscu, storescu, storescp: real DICOM clients and servers
  python3-hl7      # HL7 v2 MLLP peers
  shellcheck       # lint of the rendered bootstrap and notify scripts
  cloud-init       # cloud-init schema on the rendered user data
  netplan.io       # netplan generate on the rendered network configuration
  awscli           # the notify script's real AWS CLI, against a simulated EC2 endpoint
  socat            # the agent's runtime API calls (show stat, show servers state) in the rollout e2e test
  wrk              # HTTP load in the data-plane benchmark
  iproute2         # network namespaces, veth, bridges
  iptables         # TProxy rules in the e2e tests
  openssl          # throwaway certificates
  librsvg2-bin     # rsvg-convert: the layout drawings render to PNG
  debootstrap      # the Debian 13 (trixie) and forky roots whose HAProxy 3.0 and 3.2 validate every rendered config too
  curl             # HTTP(S) clients in the e2e tests
  procps           # pgrep/pidof in the tests and the keepalived track scripts
  util-linux       # unshare: validate --strict runs keepalived -t in a private network namespace
  time             # peak memory in the synth benchmark
  debootstrap      # the boot tests' Debian disk image (scripts/build-boot-image.sh)
  qemu-system-x86  # boots that image (test:boot)
  qemu-utils       # qemu-img: a copy-on-write disk per boot
  dnsmasq-base     # DHCP by MAC and DNS in the boot tests' simulated VPC
  xorriso          # the NoCloud seed ISO
  e2fsprogs        # mkfs.ext4 -d
  dpkg-dev         # dpkg-scanpackages: the boot tests' image folder indexes the recipe's packages (bench:boot's SIMULATED mirror)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Every rendered haproxy.cfg names the server-state file the node's agent keeps (/var/lib/haproxy, created by
# the haproxy package); haproxy -c needs it to exist, as on a node: an empty state with its version line.
ensure_server_state() {
  if [ -d /var/lib/haproxy ] && [ ! -s /var/lib/haproxy/server-state ]; then printf '1\n' >/var/lib/haproxy/server-state; fi
}

if [ ${#missing[@]} -eq 0 ]; then
  ensure_server_state
  echo "install-test-tools: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: missing ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "install-test-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Package installs may start the daemons they ship (haproxy, keepalived, orthanc). On an engineer's
# workstation the same daemons may already run, serving real work, and on a shared machine other test
# runs start their own haproxy/keepalived processes: never stop any of those (no pkill by name). So:
# 1. ask the install not to start services at all (Debian's policy-rc.d hook, exit 101 = "action not
#    allowed", honoured by invoke-rc.d and deb-systemd-invoke), when the machine has no policy of its
#    own; removed again on exit;
# 2. under systemd, stop only a unit that was inactive before the install and is active after it: the
#    one this install started (should a package start it despite the policy).
units=(haproxy keepalived orthanc)
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# install-test-tools: no service starts during the test tools install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup_policy() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup_policy EXIT

systemd=0
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemd=1; fi
declare -A active_before=()
if [ "$systemd" = 1 ]; then
  for unit in "${units[@]}"; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then active_before[$unit]=1; fi
  done
fi

apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

if [ "$systemd" = 1 ]; then
  for unit in "${units[@]}"; do
    if [ -z "${active_before[$unit]:-}" ] && systemctl is-active --quiet "$unit" 2>/dev/null; then
      echo "install-test-tools: stopping $unit.service, started by this install"
      systemctl stop "$unit" || true
    fi
  done
fi
ensure_server_state
echo "install-test-tools: done"
