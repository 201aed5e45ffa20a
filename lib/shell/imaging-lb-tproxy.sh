#!/bin/bash
# imaging-lb-tproxy: transparent proxying (HAProxy `usesrc clientip`). Packets of sockets HAProxy holds
# transparently are marked 1 and delivered locally through table 100.
# Run at boot by imaging-lb-tproxy.service; converges (nothing is added twice).
set -euo pipefail
if ! iptables -t mangle -n -L DIVERT >/dev/null 2>&1; then
  iptables -t mangle -N DIVERT
fi
# append CHAIN RULE...: appends the mangle rule unless it is already there.
append() { iptables -t mangle -C "$@" 2>/dev/null || iptables -t mangle -A "$@"; }
append PREROUTING -p tcp -m socket -j DIVERT
append DIVERT -j MARK --set-mark 1
append DIVERT -j ACCEPT
if [ -z "$(ip rule show fwmark 1 lookup 100)" ]; then
  ip rule add fwmark 1 lookup 100
fi
ip route replace local 0.0.0.0/0 dev lo table 100
