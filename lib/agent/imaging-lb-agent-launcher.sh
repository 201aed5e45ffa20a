#!/bin/bash
# imaging-lb-agent: starts this node's agent, the one the last good configuration bundle carries, so the agent
# changes in place with the configuration (gated and rolled back like any other change).
#
#   the last good bundle's agent                      (<state>/good/stage/usr/local/lib/imaging-lb/agent)
#   → the one before it, when that agent never completed a run in 3 starts (its version is then refused:
#     the previous agent rolls the configuration back too, and the status says why)
#   → on a node with no good bundle yet (first boot): the machine's loader (user data) fetches this node's
#     manifest, verifies its signature and stages the bundle's agent, which then applies the whole bundle.
#
# Arguments go to the agent (--once, --boot, status, retry, release, refresh). Run by imaging-lb-agent.service
# (Restart=always: exit 75 means "a new agent arrived, start me again"). Tests: IMAGING_LB_ROOT prefixes every
# path; IMAGING_LB_PYTHON names the interpreter.
set -euo pipefail

ROOT="${IMAGING_LB_ROOT:-}"
STATE="$ROOT/var/lib/imaging-lb/agent"
PACKAGE=usr/local/lib/imaging-lb/agent
PYTHON="${IMAGING_LB_PYTHON:-python3}"
MAX_STARTS=3

log() { printf 'imaging-lb-agent: %s\n' "$*" >&2; }

# carries_agent DIR: whether bundle folder DIR (good, good.previous, boot) holds an agent.
carries_agent() { [ -f "$1/stage/$PACKAGE/imaging_lb_agent/__main__.py" ]; }

# version_of DIR: the bundle version of DIR (the agent of 0.2 kept it in <state>/applied).
version_of() {
  local version
  version="$(cat "$1/version" 2>/dev/null || cat "$STATE/applied" 2>/dev/null || true)"
  echo "${version:-unknown}"
}

# starts_exceeded VERSION: counts a start of VERSION's agent; true once it started MAX_STARTS times without
# completing a run (the agent writes <state>/agent-ok after its first complete run).
starts_exceeded() {
  local version="$1" seen count=0
  if [ "$(cat "$STATE/agent-ok" 2>/dev/null || true)" = "$version" ]; then return 1; fi
  if [ -f "$STATE/agent-starts" ]; then read -r seen count <"$STATE/agent-starts" || true; fi
  if [ "${seen:-}" != "$version" ]; then count=0; fi
  count=$((count + 1))
  echo "$version $count" >"$STATE/agent-starts"
  [ "$count" -gt "$MAX_STARTS" ]
}

# choose: the bundle folder whose agent runs now.
choose() {
  local good="$STATE/good" version
  if carries_agent "$good"; then
    version="$(version_of "$good")"
    if [ "$(cat "$STATE/agent-refused" 2>/dev/null || true)" != "$version" ] && ! starts_exceeded "$version"; then
      echo "$good"
      return
    fi
    if [ "$(cat "$STATE/agent-refused" 2>/dev/null || true)" != "$version" ]; then
      log "the agent of version $version never completed a run in $MAX_STARTS starts: refused, falling back"
      echo "$version" >"$STATE/agent-refused"
    fi
    if carries_agent "$STATE/good.previous"; then
      echo "$STATE/good.previous"
      return
    fi
  fi
  if carries_agent "$STATE/boot"; then echo "$STATE/boot"; fi
}

mkdir -p "$STATE"
dir="$(choose)"
if [ -z "$dir" ]; then
  case "${1:-}" in
    status | retry | release | refresh)
      log "no agent yet on this node (the first configuration apply has not run)"
      exit 1
      ;;
  esac
  log "no agent on this node yet: loading the one of this node's bundle"
  # The service and the bootstrap's first apply may both get here: one loads, the other waits for it.
  exec 8>"$STATE/loader.lock"
  flock 8
  carries_agent "$STATE/boot" || "$ROOT/usr/local/sbin/imaging-lb-agent-loader"
  exec 8>&-
  dir="$STATE/boot"
fi
IMAGING_LB_AGENT_DIR="$dir" IMAGING_LB_AGENT_ID="$(version_of "$dir")" PYTHONPATH="$dir/stage/$PACKAGE" \
  exec "$PYTHON" -m imaging_lb_agent "$@"
