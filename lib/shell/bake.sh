# imaging-lb image recipe: turns a fresh instance of a supported OS into a baked imaging-lb image, so a
# node boots to serving with nothing fetched from the internet. Run as root on the build instance (EC2
# Image Builder runs it; the boot test runs it in its disk image's root). Idempotent.
#
# The values come first, from imaging-lb (`imaging-lb render image-recipe <env.yaml>`): OS, PACKAGES,
# SNAPS, HAPROXY_PPA, HAPROXY_SERIES, CLOUDWATCH_AGENT_DEB, RECIPE, MANIFEST.
# shellcheck shell=bash disable=SC2154 # the values are assigned above this body

set -euo pipefail
umask 022
export DEBIAN_FRONTEND=noninteractive
log() { printf 'imaging-lb-bake: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_apt() {
  if [ -n "$HAPROXY_SERIES" ]; then
    # HAProxy stays on the environment's LTS series (patch updates only), as the bootstrap pins it.
    mkdir -p /etc/apt/preferences.d
    printf 'Package: haproxy\nPin: version %s.*\nPin-Priority: 1001\n' "$HAPROXY_SERIES" >/etc/apt/preferences.d/imaging-lb-haproxy.pref
  fi
  if [ -n "$HAPROXY_PPA" ]; then
    apt-get update -q
    apt-get install -y -q software-properties-common
    add-apt-repository -y "ppa:vbernat/haproxy-$HAPROXY_PPA"
  fi
  apt-get update -q
  apt-get upgrade -y -q -o Dpkg::Options::=--force-confold
  apt-get install -y -q -o Dpkg::Options::=--force-confold "${PACKAGES[@]}"
  local snap
  for snap in "${SNAPS[@]}"; do snap list "$snap" >/dev/null 2>&1 || snap install "$snap" --classic; done
  if [ -n "$CLOUDWATCH_AGENT_DEB" ] && [ ! -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ]; then
    curl -fsS --retry 5 -o /var/tmp/amazon-cloudwatch-agent.deb "$CLOUDWATCH_AGENT_DEB"
    apt-get install -y -q /var/tmp/amazon-cloudwatch-agent.deb
    rm -f /var/tmp/amazon-cloudwatch-agent.deb
  fi
  apt-get clean
}

install_dnf() {
  dnf upgrade -y -q
  dnf install -y -q "${PACKAGES[@]}"
  dnf clean all
}

# version PACKAGE: its installed version, or nothing.
version() {
  case "$OS" in
    al2023) rpm -q --qf '%{VERSION}-%{RELEASE}' "$1" 2>/dev/null || true ;;
    *) dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true ;;
  esac
}

case "$OS" in
  al2023) install_dnf ;;
  ubuntu-24.04 | debian-13) install_apt ;;
  *) die "unsupported OS '$OS' (ubuntu-24.04, debian-13, al2023)" ;;
esac

haproxy_version="$(haproxy -v | sed -n 's/^HAProxy version \([0-9][0-9.]*\).*/\1/p' | head -n1)"
[ -n "$haproxy_version" ] || die "haproxy -v printed no version"
if [ -n "$HAPROXY_SERIES" ] && [ "${haproxy_version%.*}" != "$HAPROXY_SERIES" ]; then
  die "HAProxy $haproxy_version is installed, the environment pins the $HAPROXY_SERIES series"
fi
command -v aws >/dev/null || [ -x /snap/bin/aws ] || die "the AWS CLI is missing after the install"

# The manifest the bootstrap checks: which recipe baked this image, and what it installed.
mkdir -p "${MANIFEST%/*}"
{
  printf '{\n  "recipe": "%s",\n  "os": "%s",\n  "haproxy": "%s",\n  "packages": {' "$RECIPE" "$OS" "$haproxy_version"
  sep=""
  for p in "${PACKAGES[@]}"; do
    name="${p%%-[0-9]*\.\*}"
    printf '%s\n    "%s": "%s"' "$sep" "$name" "$(version "$name")"
    sep=","
  done
  printf '\n  }\n}\n'
} >"$MANIFEST.tmp"
mv "$MANIFEST.tmp" "$MANIFEST"
log "baked: HAProxy $haproxy_version, ${PACKAGES[*]}${SNAPS[*]:+, snaps ${SNAPS[*]}} (manifest $MANIFEST)"
