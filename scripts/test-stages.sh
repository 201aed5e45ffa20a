#!/usr/bin/env bash
# shellcheck disable=SC2317
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

# Unit test files run side by side: most of their time is spent waiting on the real tools they start
# (haproxy -c, the AWS CLI, bash scripts), so one more file than there are cores keeps the cores busy
# (measured on 2 cores: 182 s one at a time, 125 s with 2, 76 s with 3; the same 115 s of CPU).
IMAGING_LB_UNIT_CONCURRENCY=${IMAGING_LB_UNIT_CONCURRENCY:-$(($(nproc) + 1))}
export IMAGING_LB_UNIT_CONCURRENCY

# The stages' commands: stage NAME runs the function NAME with every character other than a-z, 0-9 made _
# (called by name: shellcheck's SC2317, unreachable code, is off for this file).
build_lint() { npm run build && npm run lint; }
unit() { node --test --test-concurrency="$IMAGING_LB_UNIT_CONCURRENCY" dist/test/*.test.js; }
node_22_24() { scripts/test-node-versions.sh; }
e2e() { node --test --test-concurrency=1 dist/test/e2e/*.e2e.js; }
e2e_haproxy_3_0() {
  mkdir -p dist/haproxy-3.0
  ln -sf ../../scripts/haproxy-3.0.sh dist/haproxy-3.0/haproxy
  PATH="$PWD/dist/haproxy-3.0:$PATH" haproxy -v | grep '^HAProxy version 3\.0\.'
  PATH="$PWD/dist/haproxy-3.0:$PATH" node --test --test-concurrency=1 "${E2E_HAPROXY_30[@]}"
}
# The agent's fault bed: moto, real HAProxy and a pair of agents; its timings are the agent's own waits.
agent() { node --test --test-concurrency=1 dist/test/agent/*.test.js; }
apply() { node --test --test-concurrency=2 dist/test/terraform-apply/*.apply.js; }
boot() { node --test --test-concurrency=1 dist/test/boot/two-arm.boot.js; }

run_stage() { stage "$1" "${1//[^a-z0-9]/_}"; }

ALL=(build+lint unit e2e e2e-haproxy-3.0 agent node-22-24 apply boot)
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${ALL[@]}"
  exit 0
fi
for name in "$@"; do
  case " ${ALL[*]} " in *" $name "*) ;; *) echo "test-stages: no stage named '$name' (stages: ${ALL[*]})" >&2; exit 2 ;; esac
done

stages_begin

# Named stages: one after the other, in the order given.
if [ $# -gt 0 ]; then
  planned=("$@")
  for i in "${!planned[@]}"; do
    if ! run_stage "${planned[$i]}"; then
      stages_not_run "${planned[@]:$((i + 1))}"
      exit 1
    fi
  done
  exit 0
fi

# Every stage (npm test). The timing-sensitive e2e suites and the agent's fault bed run alone. The boot
# test then runs beside the Node 22/24 unit runs and the apply suite: most of its time is the booted guest
# waiting (the bootstrap's 300 s wait for eth1, cloud-init, a reboot) and the applies mostly wait for the AWS
# provider's own polling, so neither needs the machine to itself. A failure stops the foreground stages; a running boot test is still
# waited for, so its result is in the table too.
foreground=(build+lint unit e2e e2e-haproxy-3.0 agent)
for i in "${!foreground[@]}"; do
  if ! run_stage "${foreground[$i]}"; then
    stages_not_run "${foreground[@]:$((i + 1))}" node-22-24 apply boot
    exit 1
  fi
done
stage_start boot boot
status=0
if ! run_stage node-22-24; then
  status=1
  stages_not_run apply
elif ! run_stage apply; then
  status=1
fi
stage_wait boot || status=1
exit "$status"
