#!/bin/bash
# imaging-lb-agent-loader: on a node with no good configuration bundle yet (its first boot), fetches this node's
# manifest and signature, proves the manifest came from the deploy (KMS decrypts the signature under the
# environment's key with this node's encryption context, and it names this manifest's sha256), downloads the
# agent files the manifest names, checks each sha256, and stages them in <state>/boot. The launcher then runs
# that agent, which applies the whole bundle. The machine carries only this loader: the agent itself always
# comes from the signed bundle, so it changes in place like any other configuration.
#
# The contract's facts (keys, key alias, signature plaintext and context) come from contract.env beside this
# script, rendered from lib/contract/node-contract.ts. Needs the AWS CLI and python3 (JSON). Retries for up to
# IMAGING_LB_LOADER_DEADLINE_SECONDS (600): on a first boot the bucket or the role's permissions may lag.
# Tests: IMAGING_LB_ROOT prefixes every path.
set -euo pipefail

ROOT="${IMAGING_LB_ROOT:-}"
# shellcheck source=/dev/null
. "$ROOT/usr/local/lib/imaging-lb/contract.env"
STATE="$ROOT${STATE_DIR:?contract.env names no STATE_DIR}"
DEADLINE=$((SECONDS + ${IMAGING_LB_LOADER_DEADLINE_SECONDS:-600}))

log() { printf 'imaging-lb-agent (loader): %s\n' "$*" >&2; }

# setting NAME: a value of the machine's agent.env (read, never evaluated).
setting() { sed -n "s/^$1=\([A-Za-z0-9._-]*\)$/\1/p" "$ROOT$AGENT_ENV" | tail -n 1; }
BUCKET="$(setting BUCKET)" PREFIX="$(setting PREFIX)" NODE="$(setting NODE)" ENVIRONMENT="$(setting ENVIRONMENT)" REGION="$(setting REGION)"
for v in BUCKET PREFIX NODE ENVIRONMENT REGION; do [ -n "${!v}" ] || { log "$ROOT$AGENT_ENV has no $v"; exit 1; }; done

# fill TEMPLATE [SHA256]: the contract template with this node's values.
fill() {
  local t="$1"
  t="${t//\{prefix\}/$PREFIX}" t="${t//\{node\}/$NODE}" t="${t//\{environment\}/$ENVIRONMENT}"
  printf '%s' "${t//\{sha256\}/${2:-}}"
}

# get KEY FILE: one S3 object, retried while the deadline allows.
get() {
  local delay=2
  until aws s3api get-object --region "$REGION" --bucket "$BUCKET" --key "$1" "$2" >/dev/null; do
    if [ $((SECONDS + delay)) -ge "$DEADLINE" ]; then
      log "cannot read s3://$BUCKET/$1"
      return 1
    fi
    log "s3://$BUCKET/$1 not readable yet: retrying in ${delay}s"
    sleep "$delay"
    delay=$((delay < 30 ? delay * 2 : 30))
  done
}

work="$STATE/boot.new"
rm -rf "$work"
mkdir -p "$work/stage"
get "$(fill "$KEY_MANIFEST")" "$work/manifest.json"
get "$(fill "$KEY_SIGNATURE")" "$work/manifest.sig"
sha="$(sha256sum "$work/manifest.json" | cut -d ' ' -f 1)"

# The signature's ciphertext, and the agent files of the manifest ("sha256 mode path"), checked as the agent checks them.
python3 - "$work" "$sha" "$NODE" "$ENVIRONMENT" "$AGENT_FILE_PATTERN" "$MANIFEST_FORMAT" <<'PY'
import json, re, sys
work, sha, node, environment, pattern, fmt = sys.argv[1:]
m = json.load(open(f"{work}/manifest.json"))
s = json.load(open(f"{work}/manifest.sig"))
if m.get("format") != int(fmt) or m.get("node") != node or m.get("environment") != environment:
    sys.exit(f"the manifest is not a format-{fmt} manifest of {environment}/{node}")
if s.get("manifestSha256") != sha:
    sys.exit("the manifest does not match its signature")
open(f"{work}/ciphertext", "w").write(s["ciphertext"])
with open(f"{work}/files", "w") as out:
    for f in m["files"]:
        if re.fullmatch(pattern, f["path"]) and re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) and f["mode"] == "0644":
            out.write(f"{f['sha256']} {f['mode']} {f['path']}\n")
with open(f"{work}/version", "w") as out:
    out.write(m["version"] + "\n")
PY
base64 -d "$work/ciphertext" >"$work/ciphertext.bin"
plaintext="$(aws kms decrypt --region "$REGION" --key-id "$(fill "$SIGNATURE_ALIAS")" --ciphertext-blob "fileb://$work/ciphertext.bin" \
  --encryption-context "$(fill "$SIGNATURE_CONTEXT")" --query Plaintext --output text | base64 -d)" || {
  log "the manifest's signature does not verify with $(fill "$SIGNATURE_ALIAS"): refused"
  exit 1
}
if [ "$plaintext" != "$(fill "$SIGNATURE_PLAINTEXT" "$sha")" ]; then
  log "the manifest's signature is for another manifest or node: refused"
  exit 1
fi
[ -s "$work/files" ] || { log "the manifest names no agent files"; exit 1; }
while read -r file_sha mode path; do
  mkdir -p "$(dirname "$work/stage$path")"
  get "$(fill "$KEY_FILE" "$file_sha")" "$work/stage$path.part"
  [ "$(sha256sum "$work/stage$path.part" | cut -d ' ' -f 1)" = "$file_sha" ] || { log "$path does not match its sha256: refused"; exit 1; }
  chmod "$mode" "$work/stage$path.part"
  mv "$work/stage$path.part" "$work/stage$path"
done <"$work/files"
rm -f "$work/manifest.json" "$work/manifest.sig" "$work/ciphertext" "$work/ciphertext.bin"
rm -rf "${STATE:?}/boot"
mv "$work" "$STATE/boot"
log "staged the agent of version $(cat "$STATE/boot/version") from s3://$BUCKET/$(fill "$KEY_MANIFEST")"
