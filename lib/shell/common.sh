# shellcheck shell=bash
# imaging-lb shell library, sourced by the imaging-lb-* scripts of the bootstrap: paths, this node's settings,
# logging, atomic writes, retries, IMDSv2 (imds.sh). Installed by cloud-init (write_files) beside
# bootstrap.env, the node's values, which it sources: the scripts themselves are the same on every node.
#
# IMAGING_LB_ROOT prefixes every path written (tests run the scripts in a sandbox tree);
# IMAGING_LB_IMDS_URL replaces the instance metadata address (tests serve a simulated IMDSv2).
shopt -s inherit_errexit
# shellcheck disable=SC2034 # ROOT and CHANGED are read by the scripts that source this file, IMDS_TIMEOUT by imds.sh.
ROOT="${IMAGING_LB_ROOT:-}" CHANGED=0 IMDS_TIMEOUT=5
IMDS="${IMAGING_LB_IMDS_URL:-http://169.254.169.254}"
# shellcheck source=/dev/null
. "$ROOT/usr/local/lib/imaging-lb/bootstrap.env"
# shellcheck source=/dev/null
. "$ROOT/usr/local/lib/imaging-lb/imds.sh"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
  # shellcheck disable=SC2034 # read by the bootstrap's EXIT trap (report_failure)
  FAILURE="$*"
  log "ERROR: $*"
  exit 1
}

# put MODE FILE: atomically replaces FILE with stdin unless content and mode already match; sets CHANGED=1
# when it writes.
put() {
  local mode="$1" file="$2" tmp="$2.imaging-lb.$$" modes
  [ -d "${file%/*}" ] || mkdir -p "${file%/*}"
  (umask 077 && cat >"$tmp")
  chmod "$mode" "$tmp"
  if cmp -s "$tmp" "$file" && modes="$(stat -c %a "$file" "$tmp")" && [ "${modes%%$'\n'*}" = "${modes#*$'\n'}" ]; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$file"
    # shellcheck disable=SC2034
    CHANGED=1
  fi
}

# retry WHAT COMMAND...: runs COMMAND until it succeeds, at most $IMAGING_LB_RETRIES times (default 6),
# waiting 2, 4, 8, 16, 30 s between tries (IMAGING_LB_RETRY_DELAY: the first wait; tests shorten it). Every
# failure is logged with its exit status (the command's own error is on stderr above it); after the last
# one retry returns that status. For the network steps: IMDS, apt, snap, Secrets Manager, S3 downloads.
retry() {
  local what="$1" try=1 max="${IMAGING_LB_RETRIES:-6}" delay="${IMAGING_LB_RETRY_DELAY:-2}" status
  shift
  while true; do
    status=0
    "$@" || status=$?
    if [ "$status" = 0 ]; then return 0; fi
    if [ "$try" -ge "$max" ]; then
      log "$what failed $try times (exit status $status): giving up"
      return "$status"
    fi
    log "$what failed (exit status $status), try $try of $max: retrying in ${delay}s"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
    if [ "$delay" -gt 30 ]; then delay=30; fi
  done
}

# imds PATH: one IMDSv2 meta-data read (session token first), each request retried with back-off (curl's
# own --retry skips refused or unreachable connections). Fails, after logging the real error, when IMDS
# does not answer; callers must not run it where set -e is off (after || or in a condition) without
# checking its status.
imds() {
  local token
  token="$(retry "IMDSv2 token request to $IMDS" imds_token 60)" || return
  retry "IMDS read of $1" imds_get "$token" "$1"
}
