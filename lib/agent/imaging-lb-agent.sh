#!/bin/bash
# imaging-lb-agent: applies this node's configuration bundle from S3 without cutting a connection.
#
#   fetch the manifest → download the files that changed, verify every sha256 → fetch the secrets → validate
#   (haproxy -dW -c, keepalived -t) → save server states → install → seamless reload → health gate
#   → on any failure roll back to the last good bundle → write this node's status to S3.
#
# Run every 10 s by imaging-lb-agent.timer, and by the bootstrap at first boot with --boot (the same path). In an HA pair
# the MASTER (the node holding the VIPs) applies a new version only after its peer reports it applied.
#
# Settings: /etc/imaging-lb/agent.env (machine: BUCKET PREFIX NODE ENVIRONMENT REGION), and
# the bundle's /etc/imaging-lb/bundle.env (configuration: runtime socket, health gate, peer).
# Tests: IMAGING_LB_ROOT prefixes every path the agent writes (HAProxy's own paths, the runtime socket and the
# server-state file, are used as the bundle names them); commands are plain PATH lookups (aws, systemctl, ...).
set -euo pipefail
shopt -s inherit_errexit
umask 022

ROOT="${IMAGING_LB_ROOT:-}"
STATE="$ROOT/var/lib/imaging-lb/agent"
PROG=imaging-lb-agent
SECRETS_REFRESH_SECONDS="${IMAGING_LB_SECRETS_REFRESH_SECONDS:-86400}"
HEARTBEAT_SECONDS=300
PEER_POLL_SECONDS="${IMAGING_LB_PEER_POLL_SECONDS:-30}"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# read_settings FILE: KEY=VALUE lines into the known variables; values are never evaluated.
read_settings() {
  local key value
  while IFS='=' read -r key value; do
    case "$key" in
      BUCKET | PREFIX | NODE | ENVIRONMENT | REGION | RUNTIME_SOCKET | SERVER_STATE_FILE | \
        HAPROXY_ENV_FILE | HEALTH_URL | GATE_SECONDS | PEER | PEER_WAIT_SECONDS | MASTER_VIP)
        printf -v "$key" '%s' "$value"
        ;;
    esac
  done <"$1"
}

# retry CMD...: runs CMD up to 4 times, 1, 2 then 4 s apart (S3, Secrets Manager: transient errors happen).
retry() {
  local attempt=1 delay=1
  until "$@"; do
    if [ "$attempt" -ge 4 ]; then return 1; fi
    sleep "$delay"
    attempt=$((attempt + 1)) delay=$((delay * 2))
  done
}

s3_get() { aws s3api get-object --region "$REGION" --bucket "$BUCKET" --key "$1" "$2" >/dev/null; }

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# unit ARGS...: systemctl without the run lock's descriptor (a service started from here must not hold it).
unit() { systemctl "$@" 9>&-; }

runtime() { socat -t 5 stdio "UNIX-CONNECT:$RUNTIME_SOCKET" <<<"$1"; }

# role: MASTER when this node holds the pair's first VIP, BACKUP otherwise, single without a peer.
role() {
  if [ -z "${PEER:-}" ]; then
    echo single
  elif ip -o -4 addr show | grep -qF " $MASTER_VIP/"; then
    echo MASTER
  else
    echo BACKUP
  fi
}

# write_status RESULT [ERROR]: this node's status object, written when it changed (or every 5 min). A write
# started in the background (STATUS_PID) finishes first, so the last status written is the last one meant.
write_status() {
  local file="$STATE/status.json" tmp="$STATE/status.json.new" haproxy_version
  if [ -n "${STATUS_PID:-}" ]; then
    wait "$STATUS_PID" || true
    STATUS_PID=""
  fi
  haproxy_version="$(haproxy -v 2>/dev/null | head -n 1 || true)"
  RESULT="$1" ERROR="${2:-}" DESIRED="${DESIRED:-}" APPLIED="$(cat "$STATE/applied" 2>/dev/null || true)" \
    APPLIED_RELEASE="$(cat "$STATE/applied-release" 2>/dev/null || true)" \
    APPLIED_AT="$(cat "$STATE/applied-at" 2>/dev/null || true)" ROLE="$(role)" HAPROXY_VERSION="$haproxy_version" \
    NODE="$NODE" ENVIRONMENT="$ENVIRONMENT" python3 -c '
import json, os
e = os.environ
print(json.dumps({
    "node": e["NODE"], "environment": e["ENVIRONMENT"], "desiredVersion": e["DESIRED"] or None,
    "appliedVersion": e["APPLIED"] or None, "appliedRelease": e["APPLIED_RELEASE"] or None, "result": e["RESULT"], "error": e["ERROR"] or None,
    "appliedAt": e["APPLIED_AT"] or None, "haproxyVersion": e["HAPROXY_VERSION"] or None,
    "role": e["ROLE"],
}, sort_keys=True))' >"$tmp"
  if cmp -s "$tmp" "$file" && [ -n "$(find "$file" -mmin -$((HEARTBEAT_SECONDS / 60)) 2>/dev/null)" ]; then
    rm -f "$tmp"
    return 0
  fi
  # updatedAt is added after the comparison: an unchanged status is not rewritten on every poll.
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); s["updatedAt"] = sys.argv[2]; print(json.dumps(s, sort_keys=True))' \
    "$tmp" "$(now)" >"$tmp.upload"
  if retry aws s3api put-object --region "$REGION" --bucket "$BUCKET" --key "$PREFIX/status/$NODE.json" \
    --body "$tmp.upload" --content-type application/json >/dev/null; then
    mv -f "$tmp" "$file"
  else
    log "could not write the status to s3://$BUCKET/$PREFIX/status/$NODE.json (the next run tries again)"
    rm -f "$tmp"
  fi
  rm -f "$tmp.upload"
}

# fail RESULT MESSAGE: logs, writes the status and ends the run with an error.
fail() {
  log "$1: $2"
  write_status "$1" "$2"
  exit 1
}

# haproxy_check FILE: haproxy -dW -c with HAProxy's environment file loaded (read, never evaluated). The
# configuration is checked against an empty server-state file: saved states of servers whose settings
# changed only warn, and a warning must not refuse a valid configuration. It reads the staged error pages
# and maintenance map (the bundle's files under /etc/haproxy/errors), not the installed ones.
haproxy_check() {
  local env_file="$ROOT$HAPROXY_ENV_FILE" name value
  printf '1\n' >"$WORK/empty-server-state"
  sed -e "s#^\([[:space:]]*server-state-file\) .*#\1 $WORK/empty-server-state#" \
    -e "s#$ROOT/etc/haproxy/errors/#$WORK/stage/etc/haproxy/errors/#g" "$1" >"$WORK/check.cfg"
  (
    if [ -f "$env_file" ]; then
      while IFS='=' read -r name value; do export "$name=$value"; done <"$env_file"
    fi
    haproxy -dW -c -f "$WORK/check.cfg"
  )
}

# read_manifest FILE: prints "version release", then one "sha256 mode path" line per file; fails on a manifest
# of another format, node or environment.
read_manifest() {
  python3 - "$1" "$NODE" "$ENVIRONMENT" <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
if m.get("format") != 1:
    sys.exit(f"manifest format {m.get('format')!r} is not 1: update imaging-lb on this node")
if m.get("node") != sys.argv[2] or m.get("environment") != sys.argv[3]:
    sys.exit(f"manifest is for {m.get('environment')}/{m.get('node')}, this node is {sys.argv[3]}/{sys.argv[2]}")
if not re.fullmatch(r"[0-9a-f]{16}", m.get("version", "")):
    sys.exit("manifest version is not 16 hex digits")
print(m["version"], m.get("release", ""))
for f in m["files"]:
    if not (re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) and re.fullmatch(r"0[0-7]{3}", f["mode"])
            and re.fullmatch(r"/[A-Za-z0-9._/-]+", f["path"]) and "/../" not in f["path"]):
        sys.exit(f"manifest entry {f!r} is malformed")
    print(f["sha256"], f["mode"], f["path"])
PY
}

# stage VERSION: puts every file of the manifest into $WORK/stage/<path> and verifies each against its sha256.
# A file the last good bundle has (same sha256) is copied from there; the others are downloaded, in parallel
# (each AWS CLI call costs a second of start-up): a typical change downloads haproxy.cfg alone.
stage() {
  local sha mode path file good_path failed=()
  local -A pids=() have=()
  if [ -f "$STATE/good/files" ]; then
    while read -r sha mode path; do have[$sha]="$STATE/good/stage$path"; done <"$STATE/good/files"
  fi
  while read -r sha mode path; do
    file="$WORK/stage$path"
    mkdir -p "${file%/*}"
    good_path="${have[$sha]:-}"
    if [ -n "$good_path" ] && cp "$good_path" "$file" 2>/dev/null; then continue; fi
    retry s3_get "$PREFIX/nodes/$NODE/files/$sha" "$file" 2>"$file.err" &
    pids[$path]=$!
  done <"$WORK/files"
  for path in "${!pids[@]}"; do
    wait "${pids[$path]}" || failed+=("$path")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    fail failed "version $1: cannot download ${failed[*]} from s3://$BUCKET/$PREFIX/nodes/$NODE/files/"
  fi
  while read -r sha mode path; do
    file="$WORK/stage$path"
    rm -f "$file.err"
    if [ "$(sha256sum "$file" | cut -d ' ' -f 1)" != "$sha" ]; then
      fail failed "version $1: $path does not match its sha256 in the manifest: refused, nothing changed"
    fi
    chmod "$mode" "$file"
  done <"$WORK/files"
}

# secret_value ARN: the secret's string, from Secrets Manager.
secret_value() { retry aws secretsmanager get-secret-value --region "$REGION" --secret-id "$1" --query SecretString --output text; }

# fetch_secrets LIST: the PEMs and HAProxy environment it names, from Secrets Manager (all at once: each AWS
# CLI call costs a second of start-up), written atomically (previous content kept as FILE.previous); prints
# every file that changed.
fetch_secrets() {
  local kind a b file value n=0 env_tmp="" missing=0
  local -a pids=()
  while read -r kind a b; do
    n=$((n + 1))
    case "$kind" in
      pem) secret_value "$a" >"$WORK/secret.$n" & ;;
      env) secret_value "$b" >"$WORK/secret.$n" & ;;
      *) continue ;;
    esac
    pids[n]=$!
  done < <(grep -v '^#' "$1")
  for n in "${!pids[@]}"; do
    wait "${pids[n]}" || { rm -f "$WORK/secret.$n"; missing=1; }
  done
  n=0
  while read -r kind a b; do
    n=$((n + 1))
    case "$kind" in
      pem)
        file="$ROOT$b"
        if [ ! -f "$WORK/secret.$n" ] || ! grep -q -- '-----BEGIN' "$WORK/secret.$n"; then
          log "no PEM from $a (the instance role needs secretsmanager:GetSecretValue on it)"
          missing=1
          continue
        fi
        if [ "$missing" = 1 ] || cmp -s "$WORK/secret.$n" "$file"; then continue; fi
        mkdir -p "${file%/*}"
        if [ -f "$file" ]; then cp -p "$file" "$file.previous"; else : >"$file.previous.none"; fi
        chmod 0600 "$WORK/secret.$n"
        cp -p "$WORK/secret.$n" "$file.imaging-lb-new"
        mv -f "$file.imaging-lb-new" "$file"
        echo "$file"
        ;;
      env)
        if [ ! -f "$WORK/secret.$n" ]; then
          log "no value for $a from $b (the instance role needs secretsmanager:GetSecretValue on it)"
          missing=1
          continue
        fi
        value="$(<"$WORK/secret.$n")"
        if ! [[ "$value" =~ ^[A-Za-z0-9._~+/=@%^-]{1,256}$ ]]; then
          log "$a from $b: expected 1-256 of A-Z a-z 0-9 . _ ~ + / = @ % ^ - (e.g. openssl rand -base64 24)"
          missing=1
          continue
        fi
        [ -n "$env_tmp" ] || env_tmp="$(mktemp "$STATE/haproxy.env.XXXXXX")"
        printf '%s=%s\n' "$a" "$value" >>"$env_tmp"
        ;;
    esac
  done < <(grep -v '^#' "$1")
  rm -f "$WORK"/secret.*
  if [ "$missing" = 1 ]; then
    rm -f "${env_tmp:-}"
    return 1
  fi
  if [ -n "$env_tmp" ]; then
    file="$ROOT$HAPROXY_ENV_FILE"
    mkdir -p "${file%/*}"
    if cmp -s "$env_tmp" "$file"; then
      rm -f "$env_tmp"
    else
      # A reload keeps HAProxy's environment: a new stats password takes effect at the next restart.
      if [ -f "$file" ]; then log "HAProxy environment changed: it takes effect at HAProxy's next restart"; fi
      chmod 0600 "$env_tmp"
      mv -f "$env_tmp" "$file"
    fi
  fi
}

# restore_secrets FILES...: puts back what fetch_secrets replaced.
restore_secrets() {
  local file
  for file in "$@"; do
    if [ -f "$file.previous.none" ]; then rm -f "$file" "$file.previous.none"; else mv -f "$file.previous" "$file"; fi
  done
}

# servers: "backend/server|status|check_status" for every server of the running HAProxy.
servers() {
  runtime "show stat" | awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $(col["svname"]) != "FRONTEND" && $(col["svname"]) != "BACKEND" && NF > 2 {
      print $(col["# pxname"]) "/" $(col["svname"]) "|" $(col["status"]) "|" $(col["check_status"])
    }'
}

# worker_pid: the pid of the HAProxy worker answering the runtime socket (empty when none does).
worker_pid() { runtime "show info" 2>/dev/null | sed -n 's/^Pid: //p' || true; }

# install_files FROM: installs every manifest file from FROM/<path> at its path (each atomically);
# prints the paths that changed.
install_files() {
  local sha mode path target
  while read -r sha mode path; do
    target="$ROOT$path"
    if cmp -s "$1$path" "$target" && [ "$(stat -c %a "$target")" = "$(stat -c %a "$1$path")" ]; then continue; fi
    mkdir -p "${target%/*}"
    cp -p "$1$path" "$target.imaging-lb-new"
    mv -f "$target.imaging-lb-new" "$target"
    echo "$path"
  done <"$2"
}

# save_server_state: the running worker's server states, for the next worker to start from (drain and
# maintenance survive the reload). Each server's last check result (column 11, srv_check_status) is set to
# 1 (INI, "not checked yet"), so the new worker reports a server as checked only after a check of its own:
# the health gate then needs no fixed wait for the new worker's first round of checks.
save_server_state() {
  runtime "show servers state" |
    awk '/^#/ || NF < 11 { print; next } $11 != 0 { $11 = 1 } { print }' >"$SERVER_STATE_FILE.new" &&
    mv -f "$SERVER_STATE_FILE.new" "$SERVER_STATE_FILE"
}

# reload_haproxy: hands the listeners to a new worker (master-worker; established connections stay on the
# old one until they end or hard-stop-after); waits until the new worker answers.
reload_haproxy() {
  local old new deadline=$((SECONDS + 15))
  old="$(worker_pid)"
  if [ -z "$old" ]; then
    unit enable haproxy.service
    unit restart haproxy.service
  else
    save_server_state
    unit reload haproxy.service
  fi
  until new="$(worker_pid)" && [ -n "$new" ] && [ "$new" != "$old" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "no new HAProxy worker answered within 15 s"
      return 1
    fi
    sleep 0.2
  done
}

# healthy STATUS CHECK_STATUS: UP (or draining) after a passed check, or UP without checks.
healthy() { [[ "$1" =~ ^(UP|DRAIN)$ && "$2" =~ (L4OK|L6OK|L7OK|L7OKC)$ ]] || [ "$1" = "no check" ]; }

# healthy_servers: the names of the servers healthy now (the ones the gate expects back after a reload).
healthy_servers() {
  local name status check
  while IFS='|' read -r name status check; do
    if healthy "$status" "$check"; then echo "$name"; fi
  done < <(servers)
}

# health_gate BEFORE: HAProxy answers, and every server healthy before the reload (the names in BEFORE) that
# is still configured passes a check of the new worker (not just the state loaded from the server-state
# file) within GATE_SECONDS.
health_gate() {
  local deadline=$((SECONDS + GATE_SECONDS)) waiting name status check
  # A server counts once the new worker's own check passed: it starts each at INI (save_server_state) and
  # spreads its first checks over one interval.
  log "health gate: HAProxy and $(wc -l <"$1") server(s) healthy before the reload, within ${GATE_SECONDS}s"
  while :; do
    waiting=""
    if ! curl -fsS --max-time 2 -o /dev/null "$HEALTH_URL"; then
      waiting="HAProxy's $HEALTH_URL"
    else
      while IFS='|' read -r name status check; do
        grep -qxF "$name" "$1" || continue
        healthy "$status" "$check" && continue
        waiting="${waiting:+$waiting, }$name ($status${check:+, check $check})"
      done < <(servers)
    fi
    if [ -z "$waiting" ]; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      GATE_ERROR="not healthy within ${GATE_SECONDS}s: $waiting"
      return 1
    fi
    sleep 0.5
  done
}

# apply VERSION: validate, install, reload, gate; rolls back to $STATE/good on failure.
apply() {
  local version="$1" changed secrets_changed=() before="$WORK/before" good="$STATE/good" reloaded=0 file
  # In the background: the status write costs an AWS CLI start, and the apply needs nothing from it.
  write_status applying &
  STATUS_PID=$!
  read_settings "$WORK/stage/etc/imaging-lb/bundle.env"
  GATE_SECONDS="${IMAGING_LB_GATE_SECONDS:-$GATE_SECONDS}"
  if ! fetch_secrets "$WORK/stage/etc/imaging-lb/secrets.list" >"$WORK/secrets-changed"; then
    mapfile -t secrets_changed <"$WORK/secrets-changed"
    restore_secrets "${secrets_changed[@]}"
    fail failed "version $version: could not fetch its secrets (see the journal of imaging-lb-agent); nothing changed"
  fi
  mapfile -t secrets_changed <"$WORK/secrets-changed"

  local check_output
  # haproxy.cfg names the server-state file; HAProxy needs it to exist with at least its version line.
  [ -s "$SERVER_STATE_FILE" ] || printf '1\n' >"$SERVER_STATE_FILE"
  if ! check_output="$(haproxy_check "$WORK/stage/etc/haproxy/haproxy.cfg" 2>&1)"; then
    restore_secrets "${secrets_changed[@]}"
    echo "$version" >"$STATE/failed"
    fail failed "version $version refused: haproxy -dW -c: $(tail -n 3 <<<"$check_output" | tr '\n' ' ')"
  fi
  if [ -f "$WORK/stage/etc/keepalived/keepalived.conf" ] && ! check_output="$(keepalived -t -f "$WORK/stage/etc/keepalived/keepalived.conf" 2>&1)"; then
    restore_secrets "${secrets_changed[@]}"
    echo "$version" >"$STATE/failed"
    fail failed "version $version refused: keepalived -t: $(tail -n 3 <<<"$check_output" | tr '\n' ' ')"
  fi

  healthy_servers >"$before" 2>/dev/null || : >"$before"
  changed="$(install_files "$WORK/stage" "$WORK/files")"
  GATE_ERROR=""
  # haproxy.cfg or a file it reads (error pages, maintenance map): a reload.
  if grep -q '^/etc/haproxy/' <<<"$changed" || [ "${#secrets_changed[@]}" -gt 0 ] || [ -z "$(worker_pid)" ]; then
    reloaded=1
    reload_haproxy || GATE_ERROR="HAProxy did not reload"
  fi
  if [ -z "$GATE_ERROR" ] && grep -qx /etc/keepalived/keepalived.conf <<<"$changed"; then
    if unit is-active --quiet keepalived.service; then
      unit reload keepalived.service || GATE_ERROR="keepalived did not reload"
    else
      unit enable --now keepalived.service || GATE_ERROR="keepalived did not start"
    fi
  fi
  if [ -z "$GATE_ERROR" ]; then health_gate "$before" || true; fi

  if [ -n "$GATE_ERROR" ]; then
    echo "$version" >"$STATE/failed"
    if [ ! -f "$good/files" ]; then
      fail failed "version $version: $GATE_ERROR (no earlier version to roll back to)"
    fi
    log "version $version: $GATE_ERROR; rolling back to $(cat "$STATE/applied")"
    restore_secrets "${secrets_changed[@]}"
    install_files "$good/stage" "$good/files" >/dev/null
    if [ "$reloaded" = 1 ]; then reload_haproxy || log "the rollback reload failed too"; fi
    if grep -qx /etc/keepalived/keepalived.conf <<<"$changed"; then unit reload keepalived.service || true; fi
    read_settings "$good/stage/etc/imaging-lb/bundle.env"
    fail rolled-back "version $version: $GATE_ERROR; rolled back to $(cat "$STATE/applied")"
  fi

  for file in "${secrets_changed[@]}"; do rm -f "$file.previous" "$file.previous.none"; done
  rm -rf "$good.new"
  mkdir -p "$good.new"
  cp -a "$WORK/stage" "$WORK/files" "$good.new/"
  rm -rf "$good"
  mv "$good.new" "$good"
  echo "$version" >"$STATE/applied"
  echo "$RELEASE" >"$STATE/applied-release"
  now >"$STATE/applied-at"
  date +%s >"$STATE/secrets-at"
  rm -f "$STATE/failed"
  log "version $version applied"
  write_status applied
}

# peer_ready RELEASE: whether the peer's status says it applied its bundle of RELEASE (the environment-wide
# version both nodes' manifests carry); sets PEER_STATE to `ready` or to what it says.
peer_ready() {
  local file="$WORK/peer.json"
  if ! s3_get "$PREFIX/status/$PEER.json" "$file" 2>/dev/null; then
    PEER_STATE="no status"
    return 1
  fi
  PEER_STATE="$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
ready = s.get("appliedRelease") == sys.argv[2] and s.get("result") == "applied"
said = (s.get("result"), "release", s.get("appliedRelease"), "updated", s.get("updatedAt"))
print("ready" if ready else " ".join(map(str, said)))' "$file" "$1")"
  [ "$PEER_STATE" = ready ]
}

main() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  # --boot (the bootstrap's first run): the timer, enabled just before, may already be applying; wait for
  # that run instead of skipping, and end in error unless the manifest's version is the one applied.
  local boot=0
  if [ "${1:-}" = --boot ]; then boot=1; fi
  if ! flock -n 9; then
    if [ "$boot" = 0 ]; then
      log "another run is applying: skipped"
      exit 0
    fi
    log "another run is applying: waiting for it (at most 600 s)"
    if ! flock -w 600 9; then
      log "the run in progress did not end within 600 s"
      exit 1
    fi
  fi
  read_settings "$ROOT/etc/imaging-lb/agent.env"
  if [ -f "$STATE/good/stage/etc/imaging-lb/bundle.env" ]; then read_settings "$STATE/good/stage/etc/imaging-lb/bundle.env"; fi
  WORK="$(mktemp -d "$STATE/run.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  DESIRED=""
  local applied failed waiting_since
  applied="$(cat "$STATE/applied" 2>/dev/null || true)"
  failed="$(cat "$STATE/failed" 2>/dev/null || true)"

  if ! retry s3_get "$PREFIX/nodes/$NODE/manifest.json" "$WORK/manifest.json" 2>"$WORK/error"; then
    fail failed "cannot read s3://$BUCKET/$PREFIX/nodes/$NODE/manifest.json: $(tail -n 1 "$WORK/error")"
  fi
  if ! read_manifest "$WORK/manifest.json" >"$WORK/manifest.txt" 2>"$WORK/error"; then
    fail failed "$(tail -n 1 "$WORK/error")"
  fi
  read -r DESIRED RELEASE <"$WORK/manifest.txt"
  tail -n +2 "$WORK/manifest.txt" >"$WORK/files"

  if [ "$DESIRED" = "$applied" ]; then
    local refreshed
    refreshed="$(cat "$STATE/secrets-at" 2>/dev/null || echo 0)"
    if [ $(($(date +%s) - refreshed)) -lt "$SECRETS_REFRESH_SECONDS" ]; then
      write_status applied
      exit 0
    fi
    log "daily secrets refresh"
  elif [ "$DESIRED" = "$failed" ]; then
    # A version that failed is not retried on every poll; a new upload (another version) is.
    if [ "$boot" = 1 ]; then log "version $DESIRED failed (see this node's status)"; fi
    exit "$boot"
  fi

  # A pair's MASTER asks its peer first (nothing is downloaded while it waits). It keeps asking every 2 s for
  # up to PEER_POLL_SECONDS within this run, so it starts as soon as the peer reports, not a poll later.
  if [ "$DESIRED" != "$applied" ] && [ -n "$applied" ] && [ "$(role)" = MASTER ] && ! peer_ready "$RELEASE"; then
    waiting_since="$(cat "$STATE/waiting-since" 2>/dev/null || true)"
    if [ "${waiting_since%% *}" != "$DESIRED" ]; then
      waiting_since="$DESIRED $(date +%s)"
      echo "$waiting_since" >"$STATE/waiting-since"
    fi
    local waited=$(($(date +%s) - ${waiting_since##* })) limit="${IMAGING_LB_PEER_WAIT_SECONDS:-$PEER_WAIT_SECONDS}"
    if [ "$waited" -ge "$limit" ]; then
      fail held "peer $PEER has not applied release $RELEASE within ${limit}s (its status: $PEER_STATE): this MASTER keeps version $applied"
    fi
    write_status waiting-for-peer "MASTER applies release $RELEASE after $PEER (its status: $PEER_STATE)"
    local asked_until=$((SECONDS + PEER_POLL_SECONDS))
    while [ "$SECONDS" -lt "$asked_until" ]; do
      sleep 2
      if peer_ready "$RELEASE"; then break; fi
    done
    if [ "$PEER_STATE" != ready ]; then exit 0; fi
  fi
  rm -f "$STATE/waiting-since"
  stage "$DESIRED"
  apply "$DESIRED"
}

main "$@"
