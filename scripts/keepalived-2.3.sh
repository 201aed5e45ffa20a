#!/usr/bin/env bash
# Runs keepalived 2.3 of the Debian 13 (trixie) root (scripts/trixie-root.sh) as if it were installed here: a
# private mount namespace binds this machine's /tmp, /run (network namespaces, lock and pid files), /proc,
# /sys and /dev into the root, and the caller's /etc/passwd (a test's copy with its script users), then
# chroot. The pid stays keepalived's own (every step execs). Used by test/keepalived-live.test.ts.
set -euo pipefail
root=$("$(dirname "$(readlink -f "$0")")/trixie-root.sh")
exec unshare --mount --propagation private sh -c '
  for d in /tmp /run /proc /sys /dev; do mount --rbind "$d" "$0$d"; done
  mount --bind /etc/passwd "$0/etc/passwd"
  exec chroot "$0" /usr/sbin/keepalived "$@"' "$root" "$@"
