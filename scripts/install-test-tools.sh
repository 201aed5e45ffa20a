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
  wrk              # HTTP load in the data-plane benchmark
  iproute2         # network namespaces, veth, bridges
  iptables         # TProxy rules in the e2e tests
  openssl          # throwaway certificates
  debootstrap      # the Debian 13 (trixie) root whose HAProxy 3.0 validates every rendered config too
  curl             # HTTP(S) clients in the e2e tests
  procps           # pgrep/pkill for cleanup
  time             # peak memory in the synth benchmark
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-tools: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: missing ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "install-test-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Package installs may start services we do not want running beside the tests.
for svc in haproxy keepalived orthanc; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done
pkill -x haproxy 2>/dev/null || true
pkill -x Orthanc 2>/dev/null || true
pkill -x keepalived 2>/dev/null || true
echo "install-test-tools: done"
