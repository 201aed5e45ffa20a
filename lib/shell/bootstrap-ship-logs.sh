# shellcheck shell=bash
# imaging-lb bootstrap step ship_logs (CLOUDWATCH_LOG_GROUP set), sourced by imaging-lb-bootstrap.

# CloudWatch: the agent tails files, so a small service copies HAProxy's journal to a file it ships.
ship_logs() {
  local agent_dir=/opt/aws/amazon-cloudwatch-agent deb
  # AL2023 installs the CloudWatch agent as a package (in PACKAGES); elsewhere it comes from the region's bucket.
  if [ "$OS" != al2023 ] && [ ! -x "$ROOT$agent_dir/bin/amazon-cloudwatch-agent-ctl" ]; then
    deb="$ROOT/var/tmp/amazon-cloudwatch-agent.deb"
    mkdir -p "$ROOT/var/tmp"
    aws s3 cp --no-sign-request --region "$REGION" \
      "s3://amazoncloudwatch-agent-$REGION/ubuntu/$(dpkg --print-architecture)/latest/amazon-cloudwatch-agent.deb" "$deb"
    dpkg -i "$deb"
    rm -f "$deb"
  fi
  CHANGED=0
  mkdir -p "$ROOT/var/log/imaging-lb"
  put 0644 "$UNITS/imaging-lb-haproxy-log.service" <<'EOF'
[Unit]
Description=imaging-lb: copy HAProxy's journal to /var/log/imaging-lb/haproxy.log for CloudWatch
After=haproxy.service

[Service]
ExecStart=/usr/bin/journalctl --unit=haproxy.service --follow --lines=0 --output=short-iso
StandardOutput=append:/var/log/imaging-lb/haproxy.log
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
  put 0644 "$ROOT/etc/logrotate.d/imaging-lb-haproxy" <<'EOF'
/var/log/imaging-lb/haproxy.log {
  daily
  rotate 7
  compress
  missingok
  notifempty
  copytruncate
}
EOF
  # The log group, environment and node names need no JSON escaping: bootstrap-spec.ts checks their characters.
  put 0644 "$ROOT$agent_dir/etc/imaging-lb.json" <<EOF
{
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {
            "file_path": "/var/log/imaging-lb/haproxy.log",
            "log_group_name": "$CLOUDWATCH_LOG_GROUP",
            "log_stream_name": "$ENV_NAME/$NODE_NAME"
          }
        ]
      }
    }
  }
}
EOF
  if [ "$CHANGED" = 1 ]; then
    systemctl daemon-reload
    systemctl enable imaging-lb-haproxy-log.service
    systemctl restart imaging-lb-haproxy-log.service
    amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c "file:$ROOT$agent_dir/etc/imaging-lb.json"
  else
    systemctl enable --now imaging-lb-haproxy-log.service amazon-cloudwatch-agent.service
  fi
}
