#!/usr/bin/env bash
# Applies the saved plans of plan-sites.sh, one site at a time, each converged before the next. Never
# plans: `terraform apply <saved plan>` applies exactly what was reviewed, and Terraform refuses a saved
# plan whose state changed since it was made ("Saved plan is stale"): the job fails and nothing of that
# site is changed. Re-run the whole pipeline (plan included) to plan again.
#
#   examples/pipelines/apply-sites.sh --expect-commit SHA [--plans DIR]
#
# Before anything is applied: DIR/commit must be SHA (the commit this deploy runs for) and every file must
# match DIR/SHA256SUMS. Then per line of DIR/sites.tsv: terraform init with the plan's provider lock file
# (-lockfile=readonly), terraform apply DIR/<stack>/tfplan, terraform output -json, and
# `imaging-lb status FILE --wait` (every node applied its new configuration bundle). outputs.json gets
# every stack's outputs: { "<stack>": { "<output>": value } }.
#
# Environment: IMAGING_LB (default "npx imaging-lb"), STATUS_TIMEOUT (seconds, default 900),
# OUTPUTS (default outputs.json).
set -euo pipefail

plans="plans"
expect=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --plans) plans="$2"; shift 2 ;;
    --expect-commit) expect="$2"; shift 2 ;;
    *) echo "usage: apply-sites.sh --expect-commit SHA [--plans DIR]" >&2; exit 2 ;;
  esac
done
[[ -n "$expect" ]] || { echo "usage: apply-sites.sh --expect-commit SHA [--plans DIR]" >&2; exit 2; }
read -r -a imaging_lb <<< "${IMAGING_LB:-npx imaging-lb}"
outputs="${OUTPUTS:-outputs.json}"

planned=$(cat "$plans/commit")
if [[ "$planned" != "$expect" ]]; then
  echo "apply-sites: the saved plans are for commit $planned, this deploy is for $expect; refusing" >&2
  exit 1
fi
if ! (cd "$plans" && sha256sum --check --strict --quiet SHA256SUMS); then
  echo "apply-sites: $plans/ does not match its SHA256SUMS; refusing" >&2
  exit 1
fi
listed=$(cd "$plans" && find . -type f ! -name SHA256SUMS ! -path './*/.terraform/*' ! -name .terraform.lock.hcl -printf '%P\n' | LC_ALL=C sort)
if [[ "$listed" != "$(awk '{print $2}' "$plans/SHA256SUMS" | LC_ALL=C sort)" ]]; then
  echo "apply-sites: $plans/ holds files SHA256SUMS does not list; refusing" >&2
  exit 1
fi

results=()
# The list on descriptor 3: nothing in the loop (terraform, imaging-lb) can read it from stdin.
while IFS=$'\t' read -r stack file <&3; do
  dir="$plans/$stack"
  echo "apply-sites: $stack ($file)" >&2
  cp "$dir/terraform.lock.hcl" "$dir/.terraform.lock.hcl"
  terraform -chdir="$dir" init -input=false -no-color -lockfile=readonly > /dev/null
  if ! terraform -chdir="$dir" apply -input=false -no-color -lock-timeout=5m tfplan; then
    echo "apply-sites: $stack: the saved plan was not applied (a stale plan: the state changed since it was made; re-run the pipeline to plan again)" >&2
    exit 1
  fi
  terraform -chdir="$dir" output -json > "$dir/outputs.json"
  results+=("$stack" "$dir/outputs.json")
  # Every node applied the new configuration bundle (or the job fails and later sites wait).
  "${imaging_lb[@]}" status "$file" --wait --timeout "${STATUS_TIMEOUT:-900}"
done 3< "$plans/sites.tsv"

node -e '
const fs = require("fs");
const [out, ...pairs] = process.argv.slice(1);
const all = {};
for (let i = 0; i < pairs.length; i += 2) {
  const raw = JSON.parse(fs.readFileSync(pairs[i + 1], "utf8"));
  all[pairs[i]] = Object.fromEntries(Object.entries(raw).map(([name, o]) => [name, o.value]));
}
fs.writeFileSync(out, JSON.stringify(all, null, 2) + "\n");
' "$outputs" "${results[@]}"
echo "apply-sites: applied $((${#results[@]} / 2)) saved plan(s); outputs in $outputs" >&2
