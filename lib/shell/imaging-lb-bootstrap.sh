#!/bin/bash
# imaging-lb-bootstrap: turns a fresh instance into an imaging-lb HAProxy node.
# Run once by cloud-init (runcmd) after write_files installed the scripts; running it again converges.
# Order: install_packages (a stock image) or check_image (a baked one), set_hostname, configure_network,
# configure_sysctl, configure_tproxy (TPROXY=1), configure_haproxy_unit, create_system_users (SYSTEM_USERS),
# configure_agent, ship_logs (CLOUDWATCH_LOG_GROUP).
# The machine only: the configuration (haproxy.cfg, keepalived, certificates) comes from S3 through
# imaging-lb-agent, which starts HAProxy only after haproxy -dW -c accepted it.
# Node values (OS, LAYOUT, PACKAGES, ...) come from bootstrap.env, sourced by common.sh; the optional steps
# from bootstrap-tproxy.sh and bootstrap-ship-logs.sh, installed beside it only where they run.
set -euo pipefail
umask 022
# shellcheck source=/dev/null
. "${IMAGING_LB_ROOT:-}/usr/local/lib/imaging-lb/common.sh"
if [ "$OS" != al2023 ]; then export DEBIAN_FRONTEND=noninteractive; fi
if [ -n "$EXTRA_PATH" ]; then PATH="$PATH:$EXTRA_PATH"; fi
UNITS="$ROOT/etc/systemd/system"

# installed PACKAGE...: whether every PACKAGE is installed (dpkg, or rpm on AL2023; `haproxy-3.0.*` is haproxy).
installed() {
  local p
  for p in "$@"; do
    p="${p%%-[0-9]*\.\*}"
    if [ "$OS" = al2023 ]; then
      rpm -q "$p" >/dev/null 2>&1 || return 1
    else
      [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || return 1
    fi
  done
}

# check_image (loadBalancer.image baked): the image of imaging-lb's recipe has everything, so nothing is
# installed and no package mirror is asked. What is missing is named, and the bootstrap fails with it
# (bootstrap-failed in the node's status) instead of waiting on a mirror the VPC may not reach.
check_image() {
  local missing=() p version recipe
  [ -r "$ROOT$IMAGE_MANIFEST" ] ||
    die "loadBalancer.image is baked, but this image has no $IMAGE_MANIFEST: it was not baked by imaging-lb's recipe (imaging-lb render image-recipe; docs/baked-image.md)"
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("${p%%-[0-9]*\.\*}"); done
  if [ "$AWS_CLI_SNAP" = 1 ] && ! command -v aws >/dev/null; then missing+=("the aws-cli snap"); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    die "the baked image lacks ${missing[*]}: bake it again with this environment's recipe (imaging-lb render image-recipe; docs/baked-image.md)"
  fi
  version="$(haproxy -v | sed -n 's/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p' | head -n1)"
  if [ -n "$HAPROXY_SERIES" ] && [ "$version" != "$HAPROXY_SERIES" ]; then
    die "the baked image has HAProxy ${version:-of no known version}, the environment pins the $HAPROXY_SERIES series: bake it again with this environment's recipe"
  fi
  recipe="$(sed -n 's/.*"recipe": "\([^"]*\)".*/\1/p' "$ROOT$IMAGE_MANIFEST")"
  log "image check: baked by recipe ${recipe:-?}, HAProxy $version, every package present (${PACKAGES[*]}): nothing installed"
}

install_packages() {
  if [ "$OS" = al2023 ]; then
    log "installing ${PACKAGES[*]}"
    retry "dnf install" dnf install -y "${PACKAGES[@]}"
    return
  fi
  if [ -n "$HAPROXY_PIN" ]; then
    put 0644 "$ROOT/etc/apt/preferences.d/imaging-lb-haproxy.pref" <<EOF
# imaging-lb: HAProxy stays on the $HAPROXY_PIN LTS series (patch updates only).
Package: haproxy
Pin: version $HAPROXY_PIN.*
Pin-Priority: 1001
EOF
  fi
  # A pre-baked image (or a re-run) has them all: no package index download, no mirror needed.
  if installed "${PACKAGES[@]}"; then
    log "packages already installed: ${PACKAGES[*]}"
  else
    log "installing ${PACKAGES[*]}${HAPROXY_PPA:+ (ppa:vbernat/haproxy-$HAPROXY_PPA)}"
    if [ -n "$HAPROXY_PPA" ]; then
      retry "add-apt-repository" add-apt-repository -y "ppa:vbernat/haproxy-$HAPROXY_PPA"
    fi
    retry "apt-get update" apt-get update -q
    retry "apt-get install" apt-get install -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold "${PACKAGES[@]}"
  fi
  # Ubuntu 24.04 has no awscli package: a snap.
  if [ "$AWS_CLI_SNAP" = 1 ] && ! command -v aws >/dev/null; then
    retry "snap install aws-cli" snap install aws-cli --classic
  fi
}

set_hostname() {
  # HAProxy's peers section needs the hostname to be the local peer name.
  hostnamectl set-hostname "$NODE_NAME"
}

configure_network() {
  if [ "$LAYOUT" = two-arm ]; then
    CHANGED=0
    put 0644 "$ROOT/etc/udev/rules.d/90-imaging-lb-eni.rules" <<'EOF'
# imaging-lb: an ENI attached after boot (eth1 is hot-plugged) re-runs imaging-lb-network.
ACTION=="add", SUBSYSTEM=="net", DEVPATH!="/devices/virtual/*", RUN+="/usr/bin/systemctl --no-block start imaging-lb-network.service"
EOF
    put 0644 "$UNITS/imaging-lb-network.service" <<EOF
[Unit]
Description=imaging-lb: name the ENIs eth0/eth1 by MAC and write the two-arm policy routing
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
Environment=IMAGING_LB_ENI_WAIT_SECONDS=120
ExecStart=$NETWORK
EOF
    if [ "$CHANGED" = 1 ]; then
      systemctl daemon-reload
      udevadm control --reload
    fi
  fi
  "$ROOT$NETWORK"
}

configure_sysctl() {
  {
    echo "# imaging-lb: kernel settings for an HAProxy Layer 7 load balancer (values inferred, see the docs)."
    echo "net.core.somaxconn = 8192"
    # Start and end of different parity: the kernel warns "prefer different parity" otherwise.
    echo "net.ipv4.ip_local_port_range = 1024 65535"
    if [ "$NONLOCAL_BIND" = 1 ]; then
      echo "# VIPs: bind addresses this node does not hold (yet): floating VIPs, or eth1 attached after boot."
      echo "net.ipv4.ip_nonlocal_bind = 1"
    fi
    if [ "$TPROXY" = 1 ]; then
      echo "# TProxy: forward and route packets for client addresses."
      echo "net.ipv4.ip_forward = 1"
    fi
    if [ "$TPROXY" = 1 ] || [ "$LAYOUT" = two-arm ]; then
      echo "# Asymmetric paths (two-arm / TProxy): loose reverse-path filtering."
      echo "net.ipv4.conf.all.rp_filter = 2"
      echo "net.ipv4.conf.default.rp_filter = 2"
    fi
  } | put 0644 "$ROOT/etc/sysctl.d/60-imaging-lb.conf"
  sysctl -p "$ROOT/etc/sysctl.d/60-imaging-lb.conf"
}

configure_haproxy_unit() {
  CHANGED=0
  mkdir -p "$ROOT/var/lib/haproxy/dev"
  put 0644 "$UNITS/haproxy.service.d/50-imaging-lb.conf" <<EOF
# imaging-lb: "log /dev/log" inside HAProxy's chroot reaches journald ("-": optional).
# Secrets haproxy.cfg reads as environment variables (fetched from Secrets Manager by imaging-lb-agent).
# File descriptors: about two per connection of the global maxconn, and then some.
[Service]
BindReadOnlyPaths=-/dev/log:/var/lib/haproxy/dev/log
EnvironmentFile=-$HAPROXY_ENV
LimitNOFILE=1048576
EOF
  if [ "$CHANGED" = 1 ]; then
    systemctl daemon-reload
    # The package started HAProxy with its sample configuration: the agent starts it with the bundle's.
    systemctl stop haproxy.service
  fi
}

create_system_users() {
  local user
  for user in "${SYSTEM_USERS[@]}"; do
    id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
  done
}

# config_bucket: the S3 bucket holding this node's configuration bundle and status: CONFIG_BUCKET, else the
# stack's own bucket, named after the account, which only IMDS knows at boot.
config_bucket() {
  local account
  if [ -n "$CONFIG_BUCKET" ]; then
    echo "$CONFIG_BUCKET"
    return
  fi
  account="$(imds identity-credentials/ec2/info | sed -n 's/.*"AccountId" *: *"\([0-9]\{12\}\)".*/\1/p')"
  [ -n "$account" ] || die "IMDS identity-credentials/ec2/info names no account: cannot tell the configuration bucket"
  echo "imaging-lb-$ENV_NAME-$account"
}

# json_string TEXT: TEXT as a JSON string (quotes and backslashes escaped, control characters as spaces).
json_string() {
  local text="$1"
  text="${text//\\/\\\\}"
  text="${text//\"/\\\"}"
  printf '"%s"' "${text//[[:cntrl:]]/ }"
}

# report_failure (the bootstrap's EXIT trap): a bootstrap that fails before the agent's first run writes
# this node's status object (result bootstrap-failed, and the error) where the agent would, so
# "imaging-lb status --wait" and the pipelines fail with the reason instead of waiting for a status that
# never comes. Best effort: it needs the AWS CLI and the bucket; the console output has the whole log.
report_failure() {
  local code=$? bucket file
  if [ "$code" = 0 ] || [ "${AGENT_STARTED:-0}" = 1 ] || ! command -v aws >/dev/null; then return 0; fi
  bucket="$(config_bucket 2>/dev/null)" || return 0
  file="$(mktemp)"
  printf '{"environment": %s, "node": %s, "result": "bootstrap-failed", "error": %s, "updatedAt": "%s"}\n' \
    "$(json_string "$ENV_NAME")" "$(json_string "$NODE_NAME")" \
    "$(json_string "${FAILURE:-step ${STEP:-?} failed (exit $code)}")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$file"
  if aws s3api put-object --region "$REGION" --bucket "$bucket" --key "$STATUS_KEY" \
    --body "$file" --content-type application/json >/dev/null; then
    log "failure reported to s3://$bucket/$STATUS_KEY"
  else
    log "could not report the failure to s3://$bucket/$STATUS_KEY"
  fi
  rm -f "$file"
}

# The agent applies the configuration bundle (haproxy.cfg, keepalived, secrets) from S3, now and whenever it changes.
configure_agent() {
  local bucket
  bucket="$(config_bucket)"
  CHANGED=0
  put 0644 "$ROOT$AGENT_ENV" <<EOF
# imaging-lb agent: where this node's configuration lives. Generated by imaging-lb-bootstrap.
BUCKET=$bucket
PREFIX=$CONFIG_PREFIX
NODE=$NODE_NAME
ENVIRONMENT=$ENV_NAME
REGION=$REGION
EOF
  put 0644 "$UNITS/imaging-lb-agent.service" <<EOF
[Unit]
Description=imaging-lb: apply this node's configuration bundle from S3 (validate, reload, health gate, roll back)
Wants=network-online.target
After=network-online.target haproxy.service

[Service]
# One long-lived process: a poll is one conditional GET on kept-alive connections (a CLI start per poll
# cost a second of CPU). Exit 75: a new agent arrived with the bundle, the launcher starts it.
ExecStart=$AGENT
Restart=always
RestartSec=5
# Below HAProxy and keepalived: keepalived's health checks must never wait behind the agent.
Nice=10

[Install]
WantedBy=multi-user.target
EOF
  if [ -e "$UNITS/imaging-lb-agent.timer" ]; then
    # The agent of 0.2 ran from a timer; the service replaces it.
    systemctl disable --now imaging-lb-agent.timer || true
    rm -f "$UNITS/imaging-lb-agent.timer"
    CHANGED=1
  fi
  if [ "$CHANGED" = 1 ]; then systemctl daemon-reload; fi
  # The service first: should this first apply fail (the bucket not reachable yet), the agent keeps trying.
  systemctl enable --now imaging-lb-agent.service
  log "first apply of the configuration bundle"
  AGENT_STARTED=1 # from here on the agent's status tells what happened
  "$ROOT$AGENT" --once --boot || die "the first configuration apply failed (the agent keeps trying): see s3://$bucket/$STATUS_KEY"
}

# The optional steps come in their own files, installed only on the nodes that need them.
if [ "$IMAGE" = baked ]; then steps=(check_image); else steps=(install_packages); fi
steps+=(set_hostname configure_network configure_sysctl)
if [ "$TPROXY" = 1 ]; then
  # shellcheck source=/dev/null
  . "$ROOT/usr/local/lib/imaging-lb/bootstrap-tproxy.sh"
  steps+=(configure_tproxy)
fi
steps+=(configure_haproxy_unit)
if [ "${#SYSTEM_USERS[@]}" -gt 0 ]; then steps+=(create_system_users); fi
steps+=(configure_agent)
if [ -n "$CLOUDWATCH_LOG_GROUP" ]; then
  # shellcheck source=/dev/null
  . "$ROOT/usr/local/lib/imaging-lb/bootstrap-ship-logs.sh"
  steps+=(ship_logs)
fi

trap report_failure EXIT
for STEP in "${steps[@]}"; do
  "$STEP"
done
log "done"
