#!/usr/bin/env bash
# Which environment files a pipeline synthesizes and plans, printed on stdout (for IMAGING_LB_ENVIRONMENTS).
#
#   examples/pipelines/environments.sh [BASE]
#
# A change to the package itself changes what every site renders, so it plans EVERY site, whatever
# IMAGING_LB_ENVIRONMENTS selects: package.json (its version included), package-lock.json, lib/, main.ts,
# tsconfig.json, scripts/ (the build), and the pipeline itself. BASE is the commit the change is compared
# with (the pull/merge request's base, or the branch's previous head). Without a usable BASE (a first
# push, a manual run) nothing is known about the change and every site is planned too.
#
# Environment: IMAGING_LB_ENVIRONMENTS (default sites/*.yaml), IMAGING_LB_ALL_SITES (what "every site"
# means; default sites/*.yaml).
set -euo pipefail

selected="${IMAGING_LB_ENVIRONMENTS:-sites/*.yaml}"
all="${IMAGING_LB_ALL_SITES:-sites/*.yaml}"
base="${1:-}"

# The paths whose change re-renders every site (git pathspecs).
package_paths=(package.json package-lock.json 'lib/**' main.ts tsconfig.json 'scripts/**'
  'examples/pipelines/**' .github/workflows/imaging-lb.yml .gitlab-ci.yml)

if [[ -z "$base" || "$base" =~ ^0+$ ]] || ! git rev-parse --quiet --verify "$base^{commit}" > /dev/null; then
  echo "environments: no base commit to compare with (${base:-none}); planning every site: $all" >&2
  printf '%s\n' "$all"
  exit 0
fi

changed=$(git diff --name-only "$base" HEAD -- "${package_paths[@]}")
if [[ -n "$changed" ]]; then
  echo "environments: the package itself changed since $base; planning every site ($all), not only '$selected':" >&2
  awk '{ print "  " $0 }' <<< "$changed" >&2
  printf '%s\n' "$all"
else
  printf '%s\n' "$selected"
fi
