#!/usr/bin/env bash
# Builds (once) a minimal Debian root of a given suite holding that suite's HAProxy, for `haproxy -dW -c` (and,
# for trixie, the e2e runs and keepalived tests) through chroot against releases besides the host's: Debian 13
# (trixie) gives HAProxy 3.0 and keepalived 2.3, Debian forky (testing) HAProxy 3.2. Cached under
# /var/cache/imaging-lb/, keyed by the suite, mirror and package list, so CI builds each once; concurrent
# callers wait on a lock.
# Prints the root's path on stdout. Fails loudly (non-zero, with the reason) when it cannot be built.
# Usage: scripts/debian-root.sh trixie|forky     (root needed the first time: debootstrap)
set -euo pipefail

suite="${1:-}"
case "$suite" in
  trixie)
    mirror="${IMAGING_LB_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
    # ca-certificates: `ca-file @system-ca` as on the nodes; keepalived 2.3 with what its checks and notify
    # scripts run (curl, ip) for test/keepalived-live.test.ts (scripts/keepalived-2.3.sh).
    packages=(haproxy ca-certificates keepalived curl iproute2)
    ;;
  forky)
    mirror="${IMAGING_LB_FORKY_MIRROR:-http://deb.debian.org/debian}"
    packages=(haproxy ca-certificates)
    ;;
  *)
    echo "debian-root: usage: $0 trixie|forky" >&2
    exit 2
    ;;
esac
name="$suite-root"
cache=/var/cache/imaging-lb
# The key and path are the ones scripts/trixie-root.sh always used, so roots already built stay valid.
key=$(printf '%s\n' "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-12)
root="$cache/$suite-haproxy-$key"

if [ -x "$root/usr/sbin/haproxy" ] && [ -f "$root/.imaging-lb-complete" ]; then
  echo "$root"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$name: $root is not built yet and building it needs root (debootstrap, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "$name: debootstrap is not installed (Debian package debootstrap)" >&2; exit 1; }
# Debian 12's debootstrap has no script for forky (newer ones link it to sid's, as they do trixie's): use sid's.
script=/usr/share/debootstrap/scripts/$suite
[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
[ -e "$script" ] || { echo "$name: debootstrap has no script for $suite nor sid ($script)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/$suite-haproxy-$key.lock"
flock 9
if [ -x "$root/usr/sbin/haproxy" ] && [ -f "$root/.imaging-lb-complete" ]; then
  echo "$root"
  exit 0
fi
work=$(mktemp -d "$cache/$suite-haproxy-$key.build.XXXXXX")
chmod 0755 "$work" # the root's "/": keepalived checks its scripts as an unprivileged user, who must get through it
trap 'rm -rf "$work"' EXIT
echo "$name: debootstrap --variant=minbase $suite with ${packages[*]} from $mirror (once; a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$work" "$mirror" "$script" >"$work.log" 2>&1; then
  echo "$name: debootstrap failed; last lines of $work.log:" >&2
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
