"""The few AWS calls a node makes, over HTTPS with Signature Version 4, from the Python standard library.

Why not the AWS CLI: each CLI start costs about a second of CPU, which a poll every few seconds cannot
afford (it starved keepalived's health checks on a booted pair). Here one long-lived process keeps its TLS
connections open, and a poll is one conditional GET.

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set (tests), else the
instance role's through IMDSv2 (a session token first; IMDSv1 is never used), renewed before they expire.
Endpoints: https://<service>.<region>.amazonaws.com (.com.cn in China), or AWS_ENDPOINT_URL_<SERVICE> /
AWS_ENDPOINT_URL (tests: an emulator), as the AWS CLI reads them. Python 3.9+ (Amazon Linux 2023).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Dict, Mapping, Optional, Sequence, Tuple

IMDS_URL = os.environ.get("IMAGING_LB_IMDS_URL", "http://169.254.169.254")
TIMEOUT_SECONDS = float(os.environ.get("IMAGING_LB_HTTP_TIMEOUT_SECONDS", "10"))

# Error codes AWS documents as worth retrying (throttling, a server busy, an expired token we renew).
RETRYABLE_CODES = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "SlowDown", "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "ServiceUnavailable",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "KMSInternalException", "DependencyTimeoutException",
}


# Host prefixes that differ from the service's name (the AWS CLI's AWS_ENDPOINT_URL_<SERVICE> uses the name).
ENDPOINT_PREFIXES = {"cloudwatch": "monitoring"}


class AwsError(Exception):
    """A failed AWS call: the service's error code and message, the HTTP status, and whether a retry may help."""

    def __init__(self, service: str, code: str, message: str, status: int = 0, retryable: bool = False):
        super().__init__(f"{service}: {code}: {message}" if message else f"{service}: {code}")
        self.service = service
        self.code = code
        self.status = status
        self.retryable = retryable


class Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body


def _quote(value: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(value, safe=safe)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_v4(method: str, url: str, headers: Dict[str, str], body: bytes, service: str, region: str,
            access_key: str, secret_key: str, session_token: Optional[str], now: datetime.datetime) -> Dict[str, str]:
    """Returns `headers` plus the SigV4 headers (host, x-amz-date, token, authorization; S3: x-amz-content-sha256).

    The canonical request: method, the URI path with each segment URI-encoded once (S3) or twice (other
    services), the query sorted by name, the signed headers lower-cased and sorted, the payload's sha256.
    """
    parts = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    out = dict(headers)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    out["host"] = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    out["x-amz-date"] = amz_date
    if service == "s3":
        out["x-amz-content-sha256"] = payload_hash
    if session_token:
        out["x-amz-security-token"] = session_token
    path = parts.path or "/"
    segments = [urllib.parse.unquote(s) for s in path.split("/")]
    canonical_path = "/".join(_quote(s) for s in segments)
    if service != "s3":
        canonical_path = "/".join(_quote(s) for s in canonical_path.split("/"))
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query))
    lowered = {k.lower(): " ".join(str(v).strip().split()) for k, v in out.items()}
    signed = sorted(lowered)
    canonical_headers = "".join(f"{k}:{lowered[k]}\n" for k in signed)
    signed_headers = ";".join(signed)
    canonical_request = "\n".join([method, canonical_path, canonical_query, canonical_headers, signed_headers, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), date), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    return out


class Credentials:
    def __init__(self, access_key: str, secret_key: str, token: Optional[str], expires: Optional[float]):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.expires = expires


class Imds:
    """IMDSv2: a session token (PUT), then GETs carrying it."""

    def __init__(self, base_url: str = IMDS_URL):
        self.base = base_url.rstrip("/")
        self._token: Optional[str] = None
        self._token_until = 0.0

    def _request(self, method: str, path: str, headers: Dict[str, str]) -> Tuple[int, bytes]:
        parts = urllib.parse.urlsplit(self.base + path)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def token(self) -> str:
        if self._token is None or time.time() >= self._token_until:
            try:
                status, body = self._request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
            except OSError as error:
                raise AwsError("imds", type(error).__name__, f"{self.base}: {error}", retryable=True) from error
            if status != 200:
                raise AwsError("imds", f"HTTP{status}", "no IMDSv2 session token", status, retryable=True)
            self._token = body.decode().strip()
            self._token_until = time.time() + 21000
        return self._token

    def get(self, path: str) -> Optional[str]:
        """The metadata at `path` (under /latest/meta-data/), None when IMDS says 404."""
        try:
            status, body = self._request("GET", f"/latest/meta-data/{path}", {"X-aws-ec2-metadata-token": self.token()})
            if status == 401:
                self._token = None
                status, body = self._request("GET", f"/latest/meta-data/{path}", {"X-aws-ec2-metadata-token": self.token()})
        except OSError as error:
            raise AwsError("imds", type(error).__name__, f"{self.base}: {error}", retryable=True) from error
        if status == 404:
            return None
        if status != 200:
            raise AwsError("imds", f"HTTP{status}", f"GET {path}", status, retryable=True)
        return body.decode()


def _expiration(text: Optional[str]) -> Optional[float]:
    """The epoch seconds of an IMDS credentials' `Expiration` (ISO 8601 UTC, with or without fractional
    seconds); None when absent. A value that cannot be read is a retryable error, never a crash."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    for form in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.datetime.strptime(text, form).replace(tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
    raise AwsError("imds", "BadCredentials", f"instance role credentials expire at an unreadable time: {text!r}", retryable=True)


class Session:
    """Signed requests to AWS services of one region, over kept-alive connections (one per host)."""

    def __init__(self, region: str, imds: Optional[Imds] = None):
        self.region = region
        self.imds = imds or Imds()
        self._credentials: Optional[Credentials] = None
        self._connections: Dict[Tuple[str, str, int], http.client.HTTPConnection] = {}
        self._lock = threading.Lock()

    # -- credentials ---------------------------------------------------------------------------------------
    def credentials(self) -> Credentials:
        env = os.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None, None)
        creds = self._credentials
        if creds is not None and (creds.expires is None or time.time() < creds.expires - 300):
            return creds
        role = (self.imds.get("iam/security-credentials/") or "").strip().splitlines()
        if not role:
            raise AwsError("imds", "NoRole", "the instance has no IAM role (instance profile)", retryable=True)
        document = json.loads(self.imds.get(f"iam/security-credentials/{role[0]}") or "{}")
        if document.get("Code", "Success") != "Success" or "AccessKeyId" not in document:
            raise AwsError("imds", "NoCredentials", f"instance role credentials: {document.get('Code')}", retryable=True)
        expires = _expiration(document.get("Expiration"))
        self._credentials = Credentials(document["AccessKeyId"], document["SecretAccessKey"], document.get("Token"), expires)
        return self._credentials

    # -- endpoints -----------------------------------------------------------------------------------------
    def endpoint(self, service: str) -> str:
        """The service's endpoint; `service` is the AWS CLI's name (AWS_ENDPOINT_URL_<SERVICE>), the host's
        prefix differs for CloudWatch (monitoring.<region>)."""
        override = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}") or os.environ.get("AWS_ENDPOINT_URL")
        if override:
            return override.rstrip("/")
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"https://{ENDPOINT_PREFIXES.get(service, service)}.{self.region}.{suffix}"

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        conn = self._connections.get(key)
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
            self._connections[key] = conn
        return conn

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    # -- requests ------------------------------------------------------------------------------------------
    def request(self, service: str, method: str, url: str, headers: Optional[Dict[str, str]] = None, body: bytes = b"",
                signing_service: Optional[str] = None) -> Response:
        """One signed request; a dropped kept-alive connection is re-opened once. Network errors raise a
        retryable AwsError; HTTP errors are returned for the caller to interpret."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with self._lock:
            for attempt in (1, 2):
                creds = self.credentials()
                signed = sign_v4(method, url, headers or {}, body, signing_service or service, self.region,
                                 creds.access_key, creds.secret_key, creds.token, datetime.datetime.now(datetime.timezone.utc))
                conn = self._connection(scheme, parts.hostname or "", port)
                try:
                    conn.request(method, target, body=body, headers=signed)
                    response = conn.getresponse()
                    data = response.read()
                    if response.getheader("connection", "").lower() == "close":
                        conn.close()
                    return Response(response.status, dict(response.getheaders()), data)
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    self._connections.pop((scheme, parts.hostname or "", port), None)
                    if attempt == 2 or isinstance(error, socket.timeout):
                        raise AwsError(service, type(error).__name__, str(error) or "connection failed", retryable=True) from error
        raise AssertionError("unreachable")

    def _error(self, service: str, response: Response) -> AwsError:
        code, message = f"HTTP{response.status}", ""
        text = response.body.decode("utf-8", "replace")
        if text.lstrip().startswith("{"):
            try:
                document = json.loads(text)
                code = str(document.get("__type", document.get("code", code))).split("#")[-1]
                message = str(document.get("message", document.get("Message", "")))
            except ValueError:
                pass
        elif "<Code>" in text:
            code = text.split("<Code>", 1)[1].split("</Code>", 1)[0]
            if "<Message>" in text:
                message = text.split("<Message>", 1)[1].split("</Message>", 1)[0]
        if response.status in (401, 403) and code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            self._credentials = None
        retryable = response.status >= 500 or response.status == 429 or code in RETRYABLE_CODES
        return AwsError(service, code, message, response.status, retryable)

    # -- S3 ------------------------------------------------------------------------------------------------
    def _s3_url(self, bucket: str, key: str) -> str:
        base = self.endpoint("s3")
        quoted = _quote(key, safe="-_.~/")
        custom = bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
        if custom or "." in bucket:
            return f"{base}/{bucket}/{quoted}"
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{bucket}.{rest}/{quoted}"

    def s3_get(self, bucket: str, key: str, etag: Optional[str] = None) -> Optional[Response]:
        """GetObject. None when the object does not exist; a 304 response when `etag` still matches."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self.request("s3", "GET", self._s3_url(bucket, key), headers)
        if response.status in (200, 304):
            return response
        if response.status == 404 and b"NoSuchBucket" not in response.body:
            return None
        raise self._error("s3", response)

    def s3_put(self, bucket: str, key: str, body: bytes, content_type: str = "application/json") -> None:
        response = self.request("s3", "PUT", self._s3_url(bucket, key), {"content-type": content_type}, body)
        if response.status != 200:
            raise self._error("s3", response)

    # -- EC2 (Query API) -------------------------------------------------------------------------------------
    def ec2_call(self, action: str, params: Sequence[Tuple[str, str]]) -> str:
        """One EC2 Query API request (form-encoded POST): the response's XML, or an AwsError."""
        body = urllib.parse.urlencode([("Action", action), ("Version", "2016-11-15"), *params]).encode()
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
        response = self.request("ec2", "POST", self.endpoint("ec2") + "/", headers, body)
        if response.status != 200:
            raise self._error("ec2", response)
        return response.body.decode("utf-8", "replace")

    # -- JSON services ---------------------------------------------------------------------------------------
    def _json_call(self, service: str, target: str, payload: dict, json_version: str = "1.1", signing_service: Optional[str] = None) -> dict:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": f"application/x-amz-json-{json_version}", "x-amz-target": target}
        response = self.request(service, "POST", self.endpoint(service) + "/", headers, body, signing_service=signing_service)
        if response.status != 200:
            raise self._error(service, response)
        return json.loads(response.body.decode() or "{}")

    def put_metric_data(self, namespace: str, data: list) -> None:
        """CloudWatch PutMetricData (its JSON protocol, awsJson1_0): at most 1000 entries, no timestamps
        (CloudWatch stamps them on receipt)."""
        self._json_call("cloudwatch", "GraniteServiceVersion20100801.PutMetricData", {"Namespace": namespace, "MetricData": data},
                        json_version="1.0", signing_service="monitoring")

    def secret_value(self, secret_id: str) -> Tuple[str, str]:
        """GetSecretValue: (SecretString, VersionId)."""
        document = self._json_call("secretsmanager", "secretsmanager.GetSecretValue", {"SecretId": secret_id})
        if "SecretString" not in document:
            raise AwsError("secretsmanager", "NoSecretString", f"{secret_id} holds binary data, not a string")
        return document["SecretString"], str(document.get("VersionId", ""))

    def kms_decrypt(self, ciphertext_b64: str, context: Mapping[str, str], key_id: str) -> bytes:
        """Decrypt under exactly `key_id` with exactly `context`: the plaintext, or an AwsError (a wrong key,
        context or ciphertext is InvalidCiphertextException / IncorrectKeyException, never retryable)."""
        document = self._json_call("kms", "TrentService.Decrypt",
                                   {"CiphertextBlob": ciphertext_b64, "EncryptionContext": dict(context), "KeyId": key_id})
        return base64.b64decode(document["Plaintext"])
