#!/usr/bin/env bash
# Runs HAProxy 3.0 of the Debian 13 (trixie) root (scripts/trixie-root.sh) as if it were installed here: a
# private mount namespace binds this machine's /tmp into the root, then chroot. Put a link named `haproxy`
# to this script first on PATH to run the e2e tests against 3.0 (npm run test:e2e:haproxy-3.0). The pid
# stays HAProxy's own (every step execs), so signals (USR2 reloads) reach it.
set -euo pipefail
root=$("$(dirname "$(readlink -f "$0")")/trixie-root.sh")
exec unshare --mount --propagation private sh -c 'mount --bind /tmp "$0/tmp" && exec chroot "$0" /usr/sbin/haproxy "$@"' "$root" "$@"
