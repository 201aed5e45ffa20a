# shellcheck shell=bash
# imaging-lb network.sh for systemd-networkd (AL2023), sourced by imaging-lb-network: .link files name the
# ENIs by MAC; our 10-* .network files match before the 70-* files amazon-ec2-net-utils generates.

# networkd_link N MAC: eth<N>'s .link file.
networkd_link() {
  printf '[Match]\nMACAddress=%s\n\n[Link]\nName=eth%s\n' "$2" "$1"
}

# networkd_network N MAC ADDRESS: eth<N>'s .network file (two-arm: its routing table and rules).
networkd_network() {
  local n="$1" mac="$2" address="$3" a table
  table="$(eni "$n" TABLE)"
  printf '[Match]\nMACAddress=%s\n\n[Network]\nDHCP=ipv4\n' "$mac"
  for a in $(eni "$n" ADDRESSES); do printf 'Address=%s/32\n' "$a"; done
  printf '\n'
  if [ "$LAYOUT" = two-arm ]; then
    printf '[DHCPv4]\nRouteMetric=%s\n' "$((100 * (n + 1)))"
    if [ "$n" = 1 ]; then printf 'UseRoutes=false\n'; fi
    printf '\n[Route]\nDestination=%s\nScope=link\nTable=%s\n' "$(eni "$n" SUBNET)" "$table"
    printf '\n[Route]\nGateway=%s\nGatewayOnLink=yes\nTable=%s\n' "$(eni "$n" ROUTER)" "$table"
    printf '\n[RoutingPolicyRule]\nFrom=%s/32\nTable=%s\nPriority=%s\n' "$address" "$table" "$(eni "$n" PRIORITY)"
    if [ "$n" = 1 ]; then
      printf '\n[RoutingPolicyRule]\nFrom=%s\nTable=%s\nPriority=%s\n' "$(eni 1 SUBNET)" "$table" "$(($(eni 1 PRIORITY) + 1))"
    fi
  fi
}

# rename MAC NAME: give the live interface with MAC its name now (the .link file covers later attaches).
rename() {
  local name state mac rest
  while read -r name state mac rest; do
    if [ "$mac" = "$1" ] && [ "$name" != "$2" ]; then
      log "renaming $name ($mac) to $2 (state $state${rest:+, $rest})"
      ip link set dev "$name" down
      ip link set dev "$name" name "$2"
      ip link set dev "$2" up
    fi
  done < <(ip -br link show)
}

# configure N MAC ADDRESS: eth<N>'s files, and its live name.
configure() {
  put 0644 "$ROOT/etc/systemd/network/10-imaging-lb-eth$1.link" < <(networkd_link "$1" "$2")
  put 0644 "$ROOT/etc/systemd/network/10-imaging-lb-eth$1.network" < <(networkd_network "$1" "$2" "$3")
  rename "$2" "eth$1"
}

# write_network MAC0 IP0 MAC1 IP1 (MAC1 empty: no eth1 yet): writes the files, applies them when changed.
write_network() {
  configure 0 "$1" "$2"
  if [ -n "$3" ]; then configure 1 "$3" "$4"; fi
  if [ "$CHANGED" = 1 ]; then
    log "applying the network configuration"
    networkctl reload
    # shellcheck disable=SC2086 # eth1 only once it is attached
    networkctl reconfigure eth0 ${3:+eth1}
  fi
}
