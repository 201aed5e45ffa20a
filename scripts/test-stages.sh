#!/usr/bin/env bash
# npm test: every test of imaging-lb, as timed stages (scripts/lib/stages.sh), stopping at the first failure.
# At the end, also after a failure, it prints each stage's wall and CPU time (under .ci/run, .ci/run prints
# them together with its own set-up stages).
#
#   scripts/test-stages.sh                 # every stage, in order: what `npm test` runs
#   scripts/test-stages.sh e2e apply       # the named stages only (the npm run test:* scripts), no build
#   scripts/test-stages.sh --list          # the stages' names, in order
#
# The stages are the single list of what `npm test` runs; the package.json test:* scripts run one of them
# after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/stages.sh
source scripts/lib/stages.sh

# HAProxy 3.0 (Debian 13) runs the issue-11 files, the product-* files and the live DICOM check.
E2E_HAPROXY_30=(
  dist/test/dicom-check-live.test.js
  dist/test/e2e/single-node-reload.e2e.js
  dist/test/e2e/pair-source-checks.e2e.js
  dist/test/e2e/web-route-cookies.e2e.js
  dist/test/e2e/connection-logs.e2e.js
  dist/test/e2e/clinical-sessions.e2e.js
  dist/test/e2e/maintenance-pages.e2e.js
  dist/test/e2e/product-dicom.e2e.js
  dist/test/e2e/product-web.e2e.js
  dist/test/e2e/product-client-address.e2e.js
  dist/test/e2e/product-one-arm-hl7.e2e.js
  dist/test/e2e/product-failover.e2e.js
)

e2e_haproxy_30() {
  mkdir -p dist/haproxy-3.0
  ln -sf ../../scripts/haproxy-3.0.sh dist/haproxy-3.0/haproxy
  PATH="$PWD/dist/haproxy-3.0:$PATH" haproxy -v | grep '^HAProxy version 3\.0\.'
  PATH="$PWD/dist/haproxy-3.0:$PATH" node --test --test-concurrency=1 "${E2E_HAPROXY_30[@]}"
}

# One stage by name.
run_stage() {
  case $1 in
    build+lint) stage build+lint bash -c 'npm run build && npm run lint' ;;
    unit) stage unit node --test dist/test/*.test.js ;;
    node-22-24) stage node-22-24 scripts/test-node-versions.sh ;;
    e2e) stage e2e node --test --test-concurrency=1 dist/test/e2e/*.e2e.js ;;
    e2e-haproxy-3.0) stage e2e-haproxy-3.0 e2e_haproxy_30 ;;
    apply) stage apply node --test --test-concurrency=1 dist/test/terraform-apply/*.apply.js ;;
    boot) stage boot node --test --test-concurrency=1 dist/test/boot/two-arm.boot.js ;;
    *)
      echo "test-stages: no stage named '$1' (stages: ${ALL[*]})" >&2
      return 2
      ;;
  esac
}

ALL=(build+lint unit node-22-24 e2e e2e-haproxy-3.0 apply boot)
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${ALL[@]}"
  exit 0
fi
if [ $# -eq 0 ]; then set -- "${ALL[@]}"; fi
for name in "$@"; do
  case " ${ALL[*]} " in *" $name "*) ;; *) echo "test-stages: no stage named '$name' (stages: ${ALL[*]})" >&2; exit 2 ;; esac
done

stages_begin
planned=("$@")
for i in "${!planned[@]}"; do
  if ! run_stage "${planned[$i]}"; then
    stages_not_run "${planned[@]:$((i + 1))}"
    exit 1
  fi
done
