# shellcheck shell=bash
# Timed stages, for .ci/run and scripts/test-stages.sh (npm test). Source this file, then:
#
#   stages_begin                 # once; the outermost caller owns the record and prints it at exit
#   stage NAME CMD [ARG...]      # runs CMD; records NAME, result, wall and CPU seconds; returns CMD's status
#   stage_start NAME CMD...      # the same in the background (for stages that overlap another)
#   stage_wait NAME              # waits for a background stage; returns its status
#   stages_not_run NAME...       # records stages that did not run because an earlier one failed
#
# The record is a tab-separated file named by IMAGING_LB_STAGE_LOG (exported, so a nested runner — npm test
# under .ci/run — appends to its parent's). Whoever called stages_begin first prints the table when it
# exits, also when a stage failed or the run was interrupted (an EXIT trap).
#
# CPU is the user + system time of the stage's processes that were waited for (bash `times` of a
# subshell), so it also counts the tests' servers (haproxy, Orthanc, terraform, QEMU) when their parent
# reaped them. CPU close to twice the wall time means both cores were busy with the stage.

_STAGES_BG=()

# The seconds of a `times` field such as 1m2.345s.
_stages_seconds() {
  local field=$1 minutes seconds
  minutes=${field%%m*}
  seconds=${field#*m}
  seconds=${seconds%s}
  awk -v m="$minutes" -v s="$seconds" 'BEGIN { printf "%.1f", m * 60 + s }'
}

# Children's user + system CPU seconds of the current (sub)shell, from `times`' second line. `times` must
# run in this shell itself (a pipe or command substitution would fork and count that fork's children).
_stages_cpu() {
  local user sys file
  file=$(mktemp "${TMPDIR:-/tmp}/imaging-lb-stage-times.XXXXXX")
  times >"$file"
  read -r user sys < <(sed -n 2p "$file")
  rm -f "$file"
  awk -v u="$(_stages_seconds "$user")" -v s="$(_stages_seconds "$sys")" 'BEGIN { printf "%.1f", u + s }'
}

_stages_now() { date +%s.%N; }

# Appends one line to the record: name, result, wall, cpu, load average at the end.
_stages_record() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$load" >>"$IMAGING_LB_STAGE_LOG"
}

# Creates the record and the exit trap, unless an outer runner already did (then only background stages
# are ended at exit).
stages_begin() {
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  if [ -n "${IMAGING_LB_STAGE_LOG:-}" ] && [ -e "$IMAGING_LB_STAGE_LOG" ]; then
    trap '_stages_end_background' EXIT
    return 0
  fi
  IMAGING_LB_STAGE_LOG=$(mktemp "${TMPDIR:-/tmp}/imaging-lb-stages.XXXXXX")
  export IMAGING_LB_STAGE_LOG
  _STAGES_STARTED=$(_stages_now)
  trap '_stages_exit' EXIT
}

# Every descendant of process $1 (children first, depth-first).
_stages_descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do
    echo "$child"
    _stages_descendants "$child"
  done
}

# Ends the background stages still running (the run is exiting: interrupted, or a foreground stage failed
# under set -e): SIGTERM to each of their processes, by pid, so the tests' own cleanup handlers run, and
# SIGKILL to what is left after 60 s. The process tree is read again until the stage's subshell is gone:
# a stage started a moment ago may not have forked its command yet.
_stages_end_background() {
  local pid child ticks
  local -A signalled=()
  for pid in "${_STAGES_BG[@]}"; do
    ticks=0
    while kill -0 "$pid" 2>/dev/null; do
      for child in $(_stages_descendants "$pid"); do
        if [ "$ticks" -ge 300 ]; then
          kill -KILL "$child" 2>/dev/null || true
        elif [ -z "${signalled[$child]:-}" ]; then
          kill -TERM "$child" 2>/dev/null || true
          signalled[$child]=1
        fi
      done
      ticks=$((ticks + 1))
      sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
  done
}

_stages_exit() {
  local status=$?
  _stages_end_background
  stages_report >&2
  rm -f "$IMAGING_LB_STAGE_LOG" "$IMAGING_LB_STAGE_LOG".bg.*
  exit "$status"
}

# Runs one stage in the foreground.
stage() {
  local name=$1
  shift
  local start end status cpu cpu_file wall
  if [ $# -eq 1 ] && declare -F "$1" >/dev/null; then
    echo "== stage $name: $(declare -f "$1" | sed -e '1,2d' -e '$d' -e 's/^ *//' -e 's/;$//' | paste -sd ';' | sed 's/;/; /g')" >&2
  else
    echo "== stage $name: $*" >&2
  fi
  cpu_file=$(mktemp "${TMPDIR:-/tmp}/imaging-lb-stage-cpu.XXXXXX")
  start=$(_stages_now)
  if (
    "$@"
    s=$?
    _stages_cpu >"$cpu_file"
    exit "$s"
  ); then status=0; else status=$?; fi
  end=$(_stages_now)
  cpu=$(cat "$cpu_file" 2>/dev/null || echo -)
  rm -f "$cpu_file"
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if [ "$status" -eq 0 ]; then
    _stages_record "$name" ok "$wall" "${cpu:--}"
    echo "== stage $name: ok in ${wall} s" >&2
  else
    _stages_record "$name" "FAILED ($status)" "$wall" "${cpu:--}"
    echo "== stage $name: FAILED (exit $status) after ${wall} s" >&2
  fi
  return "$status"
}

# Runs one stage in the background; its status is collected by stage_wait.
stage_start() {
  local name=$1
  shift
  (
    if stage "$name" "$@"; then s=0; else s=$?; fi
    echo "$s" >"$IMAGING_LB_STAGE_LOG.bg.$name"
  ) &
  eval "_STAGE_PID_${name//[^A-Za-z0-9]/_}=$!"
  _STAGES_BG+=("$!")
}

# Waits for a background stage; returns its status.
stage_wait() {
  local name=$1 var pid status
  var="_STAGE_PID_${name//[^A-Za-z0-9]/_}"
  pid=${!var:-}
  if [ -z "$pid" ]; then
    echo "stage_wait: no background stage named $name" >&2
    return 2
  fi
  wait "$pid" || true
  status=$(cat "$IMAGING_LB_STAGE_LOG.bg.$name" 2>/dev/null || echo 1)
  rm -f "$IMAGING_LB_STAGE_LOG.bg.$name"
  return "$status"
}

# Records stages that were planned but not run (an earlier stage failed).
stages_not_run() {
  local name
  for name in "$@"; do
    printf '%s\t%s\t-\t-\t-\n' "$name" "not run" >>"$IMAGING_LB_STAGE_LOG"
  done
}

# The min:sec form of a number of seconds (or "-").
_stages_clock() {
  case $1 in
    -) echo - ;;
    *) awk -v t="$1" 'BEGIN { t = int(t + 0.5); printf "%d:%02d", t / 60, t % 60 }' ;;
  esac
}

# Prints the table of every recorded stage, and the whole run's wall time.
stages_report() {
  [ -n "${IMAGING_LB_STAGE_LOG:-}" ] && [ -e "$IMAGING_LB_STAGE_LOG" ] || return 0
  local name result wall cpu load total
  echo
  echo "== stage times (wall and CPU in min:s; CPU of the stage's processes; load: 1-min average at its end)"
  printf '%-20s %-12s %8s %8s %6s\n' stage result wall cpu load
  while IFS=$'\t' read -r name result wall cpu load; do
    printf '%-20s %-12s %8s %8s %6s\n' "$name" "$result" "$(_stages_clock "$wall")" "$(_stages_clock "$cpu")" "$load"
  done <"$IMAGING_LB_STAGE_LOG"
  if [ -n "${_STAGES_STARTED:-}" ]; then
    total=$(awk -v a="$_STAGES_STARTED" -v b="$(_stages_now)" 'BEGIN { printf "%.1f", b - a }')
    printf '%-20s %-12s %8s\n' "whole run" "" "$(_stages_clock "$total")"
  fi
}
