"""The configuration store as a node sees it: where it is (agent.env, overridden by the instance's tags),
the node's manifest — parsed against the contract and its signature verified with KMS before anything it
names is downloaded — the content-addressed files, the status objects and the operator's commands.
"""
from __future__ import annotations

import email.utils
import hashlib
import json
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from . import contract
from .aws import AwsError, Imds, Session
from .contract import CONTRACT, ContractError


class FileEntry(NamedTuple):
    sha256: str
    mode: str
    path: str
    kind: str


class Manifest(NamedTuple):
    version: str
    release: str
    files: List[FileEntry]
    sha256: str
    etag: str


class SignatureError(Exception):
    """The manifest could not be proven to come from the deploy. `retryable`: a deploy may be in progress."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Location(NamedTuple):
    bucket: str
    prefix: str
    node: str
    environment: str
    region: str
    source: str  # "tags" or "agent.env"


def read_location(root: str, imds: Optional[Imds]) -> Location:
    """Where this node's configuration lives. agent.env (the machine) names it; the instance tags, when the
    instance exposes them in its metadata, win: a store that moved (a renamed bucket) is followed in place."""
    with open(root + contract.PATHS["agentEnv"], encoding="utf-8") as file:
        env = contract.parse_agent_env(file.read())
    bucket, prefix, source = env["BUCKET"], env["PREFIX"], "agent.env"
    if imds is not None and os.environ.get("IMAGING_LB_NO_TAGS") != "1":
        try:
            tags = CONTRACT["instanceTags"]
            tagged_bucket = imds.get(f"tags/instance/{tags['bucket']}")
            tagged_prefix = imds.get(f"tags/instance/{tags['prefix']}")
        except AwsError:
            tagged_bucket = tagged_prefix = None
        if tagged_bucket and contract.matches(contract.AGENT_ENV_KEYS["BUCKET"], tagged_bucket.strip()):
            bucket, source = tagged_bucket.strip(), "tags"
        if tagged_prefix and contract.matches(contract.AGENT_ENV_KEYS["PREFIX"], tagged_prefix.strip()):
            prefix = tagged_prefix.strip()
    return Location(bucket, prefix, env["NODE"], env["ENVIRONMENT"], env["REGION"], source)


def parse_manifest(raw: bytes, node: str, environment: str, etag: str = "") -> Manifest:
    """The manifest's version, release and files, every path and mode checked against the contract."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise ContractError(f"manifest is not JSON: {error}") from error
    rules = CONTRACT["manifest"]
    if document.get("format") != rules["format"]:
        raise ContractError(f"manifest format {document.get('format')!r} is not {rules['format']}: update imaging-lb on this node")
    if document.get("node") != node or document.get("environment") != environment:
        raise ContractError(f"manifest is for {document.get('environment')}/{document.get('node')}, this node is {environment}/{node}")
    version, release = document.get("version", ""), document.get("release", "")
    if not isinstance(version, str) or not contract.matches(rules["versionPattern"], version):
        raise ContractError("manifest version is not 16 hex digits")
    if not isinstance(release, str) or not contract.matches(rules["versionPattern"], release):
        raise ContractError("manifest release is not 16 hex digits")
    files = document.get("files")
    if not isinstance(files, list) or not 0 < len(files) <= rules["maxFiles"]:
        raise ContractError(f"manifest must list 1-{rules['maxFiles']} files")
    entries: List[FileEntry] = []
    seen = set()
    for item in files:
        if not isinstance(item, dict):
            raise ContractError(f"manifest entry {item!r} is not an object")
        sha, mode, path = item.get("sha256"), item.get("mode"), item.get("path")
        if not (isinstance(sha, str) and contract.matches(r"^[0-9a-f]{64}$", sha)):
            raise ContractError(f"manifest entry {path!r}: sha256 is not 64 hex digits")
        if not isinstance(path, str) or not isinstance(mode, str):
            raise ContractError(f"manifest entry {item!r} is malformed")
        kind = contract.bundle_file_kind(path, mode)
        if path in seen:
            raise ContractError(f"manifest names {path} twice")
        seen.add(path)
        entries.append(FileEntry(sha, mode, path, kind))
    for required in ("haproxy-config", "bundle-env", "secrets-list"):
        if not any(e.kind == required for e in entries):
            raise ContractError(f"manifest has no {required} file")
    return Manifest(version, release, entries, hashlib.sha256(raw).hexdigest(), etag)


def signature_input(environment: str, node: str, manifest_sha256: str) -> Tuple[str, Dict[str, str]]:
    signature = CONTRACT["signature"]
    values = {"environment": environment, "node": node, "sha256": manifest_sha256}
    return contract.fill(signature["plaintext"], **values), {k: contract.fill(v, **values) for k, v in signature["context"].items()}


class Store:
    """One node's view of the configuration store."""

    def __init__(self, session: Session, location: Location):
        self.session = session
        self.location = location

    def _key(self, name: str, **values: str) -> str:
        return contract.key(name, prefix=self.location.prefix, node=values.pop("node", self.location.node), **values)

    def url(self, name: str, **values: str) -> str:
        return f"s3://{self.location.bucket}/{self._key(name, **values)}"

    def manifest(self, etag: Optional[str] = None) -> Optional[Manifest]:
        """The manifest, parsed and its signature verified; None when unchanged since `etag`.
        Raises AwsError (the store), ContractError (refused) or SignatureError."""
        loc = self.location
        response = self.session.s3_get(loc.bucket, self._key("manifest"), etag)
        if response is None:
            raise AwsError("s3", "NoSuchKey", f"{self.url('manifest')} does not exist (not deployed yet?)", 404, retryable=True)
        if response.status == 304:
            return None
        manifest = parse_manifest(response.body, loc.node, loc.environment, response.headers.get("etag", ""))
        self.verify(manifest)
        return manifest

    def verify(self, manifest: Manifest) -> None:
        loc = self.location
        signature = self.session.s3_get(loc.bucket, self._key("signature"))
        if signature is None:
            raise SignatureError(f"{self.url('signature')} does not exist: a manifest without the deploy's signature is refused", retryable=False)
        try:
            document = json.loads(signature.body.decode("utf-8"))
            claimed, ciphertext = document["manifestSha256"], document["ciphertext"]
        except (ValueError, KeyError, TypeError) as error:
            raise SignatureError(f"{self.url('signature')} is malformed ({error})", retryable=False) from error
        if document.get("format") != CONTRACT["signature"]["format"]:
            raise SignatureError(f"signature format {document.get('format')!r} is not {CONTRACT['signature']['format']}", retryable=False)
        if claimed != manifest.sha256:
            # The deploy writes the signature, then the manifest: a deploy in progress, or a manifest not written by it.
            raise SignatureError("the manifest does not match its signature (a deploy in progress, or a manifest not written by the deploy)", retryable=True)
        plaintext, context = signature_input(loc.environment, loc.node, manifest.sha256)
        alias = contract.fill(CONTRACT["signature"]["keyAlias"], environment=loc.environment)
        try:
            decrypted = self.session.kms_decrypt(ciphertext, context, alias)
        except AwsError as error:
            # IAM is eventually consistent right after a deploy: AccessDenied may pass a minute later.
            retryable = error.retryable or error.code in ("AccessDeniedException", "NotFoundException")
            raise SignatureError(f"the manifest's signature does not verify with {alias}: {error}", retryable) from error
        if decrypted != plaintext.encode("utf-8"):
            raise SignatureError(f"the manifest's signature is for another manifest or node (KMS key {alias})", retryable=False)

    def file(self, sha256: str) -> bytes:
        response = self.session.s3_get(self.location.bucket, self._key("file", sha256=sha256))
        if response is None:
            raise AwsError("s3", "NoSuchKey", f"{self.url('file', sha256=sha256)} does not exist", 404, retryable=True)
        return response.body

    def put_status(self, document: dict) -> None:
        body = (json.dumps(document, sort_keys=True) + "\n").encode()
        self.session.s3_put(self.location.bucket, self._key("status"), body)

    def status_of(self, node: str) -> Tuple[Optional[dict], Optional[float]]:
        """A node's status document and its age in seconds by S3's own clock (Last-Modified against the
        response's Date), so a skewed node clock cannot make a dead peer look alive. (None, None) without one."""
        response = self.session.s3_get(self.location.bucket, self._key("status", node=node))
        if response is None:
            return None, None
        try:
            document = json.loads(response.body.decode("utf-8"))
        except ValueError:
            return {"result": "unreadable"}, None
        age = None
        modified, date = response.headers.get("last-modified"), response.headers.get("date")
        if modified and date:
            age = email.utils.parsedate_to_datetime(date).timestamp() - email.utils.parsedate_to_datetime(modified).timestamp()
        return document, age

    def command(self, etag: Optional[str] = None) -> Tuple[Optional[dict], str]:
        """The operator's last command for this node and the object's ETag; (None, etag) when unchanged or none."""
        response = self.session.s3_get(self.location.bucket, self._key("command"), etag)
        if response is None or response.status == 304:
            return None, etag or ""
        try:
            document = json.loads(response.body.decode("utf-8"))
        except ValueError:
            return None, response.headers.get("etag", "")
        return document, response.headers.get("etag", "")
