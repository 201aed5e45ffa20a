# shellcheck shell=bash
# imaging-lb bootstrap step configure_tproxy (TPROXY=1), sourced by imaging-lb-bootstrap: the TProxy unit
# running imaging-lb-tproxy at boot, and networkd told to keep the rule and route it adds.

configure_tproxy() {
  CHANGED=0
  put 0644 "$ROOT/etc/systemd/networkd.conf.d/60-imaging-lb.conf" <<'EOF'
# imaging-lb: networkd keeps the TProxy rule and table-100 route that imaging-lb-tproxy adds.
[Network]
ManageForeignRoutingPolicyRules=no
ManageForeignRoutes=no
EOF
  put 0644 "$UNITS/imaging-lb-tproxy.service" <<EOF
[Unit]
Description=imaging-lb: TProxy packet marking and local delivery (table 100)
After=network.target systemd-networkd.service
Before=haproxy.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$TPROXY_SCRIPT

[Install]
WantedBy=multi-user.target
EOF
  if [ "$CHANGED" = 1 ]; then
    systemctl daemon-reload
    systemctl try-restart systemd-networkd.service
  fi
  systemctl enable imaging-lb-tproxy.service
  "$ROOT$TPROXY_SCRIPT"
}
