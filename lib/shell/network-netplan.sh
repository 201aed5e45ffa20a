# shellcheck shell=bash
# imaging-lb network.sh for netplan (Ubuntu 24.04, Debian 13: systemd-networkd underneath), sourced by
# imaging-lb-network: match each ENI by MAC, set-name eth0/eth1 (two-arm: one routing table per ENI).

# netplan_stanza N MAC ADDRESS: the netplan ethernets entry of eth<N>.
netplan_stanza() {
  local n="$1" mac="$2" address="$3" a table
  table="$(eni "$n" TABLE)"
  printf '    eth%s:\n      match:\n        macaddress: "%s"\n      set-name: eth%s\n      dhcp4: true\n      dhcp6: false\n' "$n" "$mac" "$n"
  if [ -n "$(eni "$n" ADDRESSES)" ]; then
    printf '      addresses:\n'
    for a in $(eni "$n" ADDRESSES); do printf '        - %s/32\n' "$a"; done
  fi
  if [ "$LAYOUT" = two-arm ]; then
    # eth1's DHCP routes stay out of the main table: the main default route leaves by eth0.
    printf '      dhcp4-overrides:\n        route-metric: %s\n' "$((100 * (n + 1)))"
    if [ "$n" = 1 ]; then printf '        use-routes: false\n'; fi
    printf '      routes:\n        - to: %s\n          scope: link\n          table: %s\n' "$(eni "$n" SUBNET)" "$table"
    printf '        - to: 0.0.0.0/0\n          via: %s\n          on-link: true\n          table: %s\n' "$(eni "$n" ROUTER)" "$table"
    printf '      routing-policy:\n        - from: %s/32\n          table: %s\n          priority: %s\n' "$address" "$table" "$(eni "$n" PRIORITY)"
    if [ "$n" = 1 ]; then
      # Floating VIPs are secondary addresses of eth1's subnet that move in later.
      printf '        - from: %s\n          table: %s\n          priority: %s\n' "$(eni 1 SUBNET)" "$table" "$(($(eni 1 PRIORITY) + 1))"
    fi
  fi
}

# render_netplan MAC0 IP0 [MAC1 IP1]: the whole netplan file.
render_netplan() {
  local what="ENI names by MAC"
  if [ "$LAYOUT" = two-arm ]; then what+=" and two-arm policy routing (replies leave by the ENI the request came in on)"; fi
  printf '# imaging-lb-network: %s.\n' "$what"
  printf 'network:\n  version: 2\n  ethernets:\n'
  netplan_stanza 0 "$1" "$2"
  if [ -n "${3:-}" ]; then netplan_stanza 1 "$3" "$4"; fi
}

# write_network MAC0 IP0 MAC1 IP1 (MAC1 empty: no eth1 yet): writes the netplan file, applies it when changed.
write_network() {
  put 0600 "$ROOT/etc/netplan/60-imaging-lb.yaml" < <(render_netplan "$@")
  # cloud-init would otherwise write its own netplan (ens5 by MAC) again on the next boot.
  put 0644 "$ROOT/etc/cloud/cloud.cfg.d/99-imaging-lb-network.cfg" <<'EOF'
network: {config: disabled}
EOF
  if [ -e "$ROOT/etc/netplan/50-cloud-init.yaml" ]; then
    mkdir -p "$ROOT$STAGE"
    mv -f "$ROOT/etc/netplan/50-cloud-init.yaml" "$ROOT$STAGE/50-cloud-init.yaml.disabled"
  fi
  if [ "$CHANGED" = 1 ]; then
    log "applying the network configuration"
    netplan generate
    netplan apply
  fi
}
