#!/usr/bin/env bash
# The Debian 13 (trixie) root holding HAProxy 3.0 and keepalived 2.3 (scripts/debian-root.sh trixie; same cache
# key and path as always). Prints the root's path on stdout; fails loudly when it cannot be built.
# Usage: scripts/trixie-root.sh            (root needed the first time: debootstrap)
exec "$(dirname "$(readlink -f "$0")")/debian-root.sh" trixie
