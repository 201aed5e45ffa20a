#!/usr/bin/env bash
# Builds (once) a minimal Debian 13 (trixie) root holding HAProxy 3.0 and keepalived 2.3, for `haproxy -dW -c`,
# e2e runs and keepalived tests through chroot against current releases besides Debian 12's HAProxy 2.6 and
# keepalived 2.2.7. Cached under /var/cache/imaging-lb/, keyed by the suite, mirror and package list,
# so CI builds it once; concurrent callers wait on a lock.
# Prints the root's path on stdout. Fails loudly (non-zero, with the reason) when it cannot be built.
# Usage: scripts/trixie-root.sh            (root needed the first time: debootstrap)
set -euo pipefail

suite=trixie
mirror="${IMAGING_LB_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
# ca-certificates: `ca-file @system-ca` as on the nodes; keepalived 2.3 with what its checks and notify
# scripts run (curl, ip) for test/keepalived-live.test.ts (scripts/keepalived-2.3.sh).
packages=(haproxy ca-certificates keepalived curl iproute2)
cache=/var/cache/imaging-lb
key=$(printf '%s\n' "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-12)
root="$cache/trixie-haproxy-$key"

if [ -x "$root/usr/sbin/haproxy" ] && [ -f "$root/.imaging-lb-complete" ]; then
  echo "$root"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "trixie-root: $root is not built yet and building it needs root (debootstrap, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "trixie-root: debootstrap is not installed (Debian package debootstrap)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/trixie-haproxy-$key.lock"
flock 9
if [ -x "$root/usr/sbin/haproxy" ] && [ -f "$root/.imaging-lb-complete" ]; then
  echo "$root"
  exit 0
fi
work=$(mktemp -d "$cache/trixie-haproxy-$key.build.XXXXXX")
chmod 0755 "$work" # the root's "/": keepalived checks its scripts as an unprivileged user, who must get through it
trap 'rm -rf "$work"' EXIT
echo "trixie-root: debootstrap --variant=minbase $suite with ${packages[*]} from $mirror (once; a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$work" "$mirror" >"$work.log" 2>&1; then
  echo "trixie-root: debootstrap failed; last lines of $work.log:" >&2
  tail -n 20 "$work.log" >&2
  exit 1
fi
rm -f "$work.log"
chroot "$work" /usr/sbin/haproxy -v >&2
touch "$work/.imaging-lb-complete"
rm -rf "$root"
mv "$work" "$root"
trap - EXIT
echo "$root"
