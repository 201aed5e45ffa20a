# shellcheck shell=bash
# imaging-lb IMDSv2 requests: sourced by common.sh; the takeover script (configuration bundle, not machine)
# carries a copy in place of its '# @imds' line. One request each, the callers retry; never IMDSv1, never
# through a proxy. IMDS: the base URL; IMDS_TIMEOUT: seconds per request.

# imds_token TTL: a session token valid for TTL seconds.
imds_token() {
  curl -fsS --noproxy '*' --max-time "$IMDS_TIMEOUT" -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: $1" "$IMDS/latest/api/token"
}

# imds_get TOKEN PATH: the meta-data at PATH.
imds_get() {
  curl -fsS --noproxy '*' --max-time "$IMDS_TIMEOUT" -H "X-aws-ec2-metadata-token: $1" "$IMDS/latest/meta-data/$2"
}
