#!/usr/bin/env bash
# Plans every synthesized stack and saves each plan for the deploy: the deploy applies exactly these
# files (apply-sites.sh), it never plans again.
#
#   examples/pipelines/plan-sites.sh [--base REV] [--out DIR]
#
# Run after `npm run synth`, with the credentials of the plan role. For each environment file (sites/*.yaml
# by default) whose stack was synthesized, in file-name order (the order the deploy follows):
#   - with --base, for a file changed since REV: `imaging-lb diff --git REV FILE` (each node: reload in
#     place or replaced; exit 3: the change would replace both nodes of a pair at once, nothing is planned),
#   - terraform init, then `terraform plan -out` in cdktf.out/stacks/<stack>,
#   - into DIR/<stack>/ (default DIR: plans): tfplan (the saved plan), cdk.tf.json, terraform.lock.hcl
#     (the provider lock file, not hidden so artifact uploads keep it) and plan.txt (terraform show).
# DIR also gets: sites.tsv (stack, file; deploy order), commit (the planned commit), plan.txt (every
# plan, the review text), config-diff.txt and SHA256SUMS of all of it (checked by the deploy).
#
# Environment: IMAGING_LB_SITES (default sites/*.yaml), CDKTF_OUT (default cdktf.out),
# IMAGING_LB (default "npx imaging-lb"), COMMIT_SHA (default: git rev-parse HEAD).
set -euo pipefail

base=""
out="plans"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: plan-sites.sh [--base REV] [--out DIR]" >&2; exit 2 ;;
  esac
done
cdktf_out="${CDKTF_OUT:-cdktf.out}"
read -r -a imaging_lb <<< "${IMAGING_LB:-npx imaging-lb}"
commit="${COMMIT_SHA:-$(git rev-parse HEAD)}"
if [[ -n "$base" ]] && { [[ "$base" =~ ^0+$ ]] || ! git rev-parse --quiet --verify "$base^{commit}" > /dev/null; }; then
  echo "plan-sites: base $base is not a known commit; the pair-replacement check is skipped" >&2
  base=""
fi

manifest="$cdktf_out/manifest.json"
[[ -f "$manifest" ]] || { echo "plan-sites: $manifest not found; run npm run synth first" >&2; exit 1; }
read -r -a stacks <<< "$(node -p "Object.keys(require(require('path').resolve(process.argv[1])).stacks).join(' ')" "$manifest")"

rm -rf "$out"
mkdir -p "$out"
: > "$out/sites.tsv"
: > "$out/config-diff.txt"
printf '%s\n' "$commit" > "$out/commit"

# shellcheck disable=SC2086 # the glob is meant to expand
for file in ${IMAGING_LB_SITES:-sites/*.yaml}; do
  [[ -f "$file" ]] || continue
  stack=$(node -p "require('yaml').parse(require('fs').readFileSync(process.argv[1], 'utf8')).name" "$file")
  [[ " ${stacks[*]} " == *" $stack "* ]] || continue
  printf '%s\t%s\n' "$stack" "$file" >> "$out/sites.tsv"
done
[[ -s "$out/sites.tsv" ]] || { echo "plan-sites: no environment file matches a synthesized stack (${stacks[*]})" >&2; exit 1; }

# The list on descriptor 3: nothing in the loop can read it from stdin.
while IFS=$'\t' read -r stack file <&3; do
  dir="$cdktf_out/stacks/$stack"
  node -e "const t = require(require('path').resolve(process.argv[1])).terraform; if (!t?.backend?.s3) { console.error(process.argv[2] + ': no stateBackend in its environment file; a pipeline needs remote state in S3'); process.exit(1); }" "$dir/cdk.tf.json" "$stack"
  if [[ -n "$base" ]] && ! git diff --quiet "$base" HEAD -- "$file"; then
    if git cat-file -e "$base:$file" 2> /dev/null; then
      echo "## $file" >> "$out/config-diff.txt"
      # Exit 3: both nodes of an HA pair would be replaced at once; raise one generation per change.
      "${imaging_lb[@]}" diff --git "$base" "$file" | tee -a "$out/config-diff.txt"
    else
      echo "## $file: new site" >> "$out/config-diff.txt"
    fi
  fi
  echo "plan-sites: $stack ($file)" >&2
  terraform -chdir="$dir" init -input=false -no-color > /dev/null
  # The plan takes the state lock (use_lockfile: a .tflock object next to the state) while it reads.
  terraform -chdir="$dir" plan -input=false -no-color -lock-timeout=5m -out=tfplan > /dev/null
  mkdir -p "$out/$stack"
  cp "$dir/tfplan" "$dir/cdk.tf.json" "$out/$stack/"
  cp "$dir/.terraform.lock.hcl" "$out/$stack/terraform.lock.hcl"
  terraform -chdir="$dir" show -no-color tfplan > "$out/$stack/plan.txt"
  { echo "## $stack ($file)"; cat "$out/$stack/plan.txt"; echo; } >> "$out/plan.txt"
done 3< "$out/sites.tsv"

{ cat "$out/config-diff.txt"; cat "$out/plan.txt"; } > "$out/review.txt"
mv "$out/review.txt" "$out/plan.txt"
sums=$(cd "$out" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum)
printf '%s\n' "$sums" > "$out/SHA256SUMS"
echo "plan-sites: saved $(wc -l < "$out/sites.tsv") plan(s) for commit $commit in $out/" >&2
