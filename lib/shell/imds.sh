# shellcheck shell=bash
# imaging-lb IMDSv2 requests, shared by the bootstrap (sourced by common.sh) and the takeover script (which
# carries a copy: imaging-lb writes this file's functions in place of its '# @imds' line, as it comes with
# the configuration bundle rather than the machine). One request each, no retry: the callers retry with
# their own back-off and logging. Never IMDSv1 (every read carries a session token), never through a proxy.
# IMDS: the metadata service's base URL; IMDS_TIMEOUT: seconds per request.

# imds_token TTL: a session token valid for TTL seconds.
imds_token() {
  curl -fsS --noproxy '*' --max-time "$IMDS_TIMEOUT" -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: $1" "$IMDS/latest/api/token"
}

# imds_get TOKEN PATH: the meta-data at PATH.
imds_get() {
  curl -fsS --noproxy '*' --max-time "$IMDS_TIMEOUT" -H "X-aws-ec2-metadata-token: $1" "$IMDS/latest/meta-data/$2"
}
