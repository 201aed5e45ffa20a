"""The node agent: applies this node's configuration bundle from S3 without cutting a connection, and says
truthfully what it did.

One cycle (every POLL_SECONDS, 5 s by default, as a long-lived process; or once with --once):
  an interrupted apply is finished or rolled back first → operator commands → the manifest (a conditional
  GET: unchanged costs one request; changed: parsed against the contract and its KMS signature verified) →
  the decision (apply, wait for the peer, hold, back off, leave a failed version alone; see policy.py) →
  the secrets refresh (every 24 h, whatever the bundle's state) → the status, written when it changed and
  at least every heartbeat.

An apply: stage the files (copied from the last good bundle when their sha256 matches, downloaded
otherwise, every sha256 verified) → fetch the secrets into the staging area → haproxy -dW -c (and
keepalived -t) on the staged files → note which servers are healthy now → record the apply as pending
(so a crash, a reboot or a killed agent is finished or rolled back at the next start) → install each file
atomically → seamless reload → health gate → the new good bundle; or, on any failure, the last good bundle
and its secrets back, a reload, and the failure reported.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, FrozenSet, List, Optional, Tuple

from . import contract, files, haproxy, metrics, policy
from .aws import AwsError, Session
from .contract import DEFAULTS, PATHS, ContractError
from .store import FileEntry, Location, Manifest, SignatureError, Store, read_location

RESTART_EXIT = 75  # "run me again": the launcher then starts the agent of the new good bundle
COMMAND_POLL_CYCLES = 3  # operator commands are read every third poll (15 s): a GET each


def log(message: str) -> None:
    print(f"imaging-lb-agent: {message}", file=sys.stderr, flush=True)


def failpoint(name: str) -> None:
    """Fault injection for the tests (IMAGING_LB_FAILPOINT=<name>): the process dies here, as on a power cut."""
    if os.environ.get("IMAGING_LB_FAILPOINT") == name:
        log(f"failpoint {name}: exiting as a crash would")
        os._exit(137)


def override(name: str) -> Optional[int]:
    """An operator's (or a test's) override of a bundle setting from the environment: IMAGING_LB_GATE_SECONDS,
    IMAGING_LB_PEER_WAIT_SECONDS, IMAGING_LB_METRICS_SECONDS, IMAGING_LB_POLL_SECONDS (whole seconds; 0 allowed
    where it means "none")."""
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def roll_after(settings: Dict[str, str]) -> FrozenSet[str]:
    """Three nodes behind NLBs: the nodes this one applies after (the bundle's ROLL_AFTER); empty otherwise."""
    return frozenset(n for n in settings.get("ROLL_AFTER", "").split(",") if n)


def gate_seconds(settings: Dict[str, str]) -> int:
    value = override("IMAGING_LB_GATE_SECONDS")
    return value if value is not None else contract.setting(settings, "GATE_SECONDS")


def now_iso(at: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at if at is not None else time.time()))


class ApplyFailed(Exception):
    def __init__(self, message: str, retryable: bool, result: str = "failed"):
        super().__init__(message)
        self.retryable = retryable
        self.result = result


class Agent:
    def __init__(self, root: str = "", session: Optional[Session] = None):
        self.root = root
        self.dir = root + PATHS["stateDir"]
        os.makedirs(self.dir, exist_ok=True)
        self.state_file = os.path.join(self.dir, "state.json")
        self.state = self._load_state()
        self._session = session
        self._store: Optional[Store] = None
        self._location_read = 0.0
        self.manifest: Optional[Manifest] = None
        self.manifest_error: Optional[Tuple[str, bool]] = None
        self.decision: Optional[policy.Decision] = None
        self.commands: set = set()
        self.peer: Optional[policy.Peer] = None
        self.others: Tuple[policy.Peer, ...] = ()  # three nodes behind NLBs: every other node's status
        self.agent_id = os.environ.get("IMAGING_LB_AGENT_ID", "")
        self.agent_dir = os.environ.get("IMAGING_LB_AGENT_DIR", "")
        self.last_status: Optional[dict] = None
        self.last_status_write = 0.0
        self._haproxy_version = ""
        self.restart_wanted = False
        self.apply_failed = False
        self.once = False
        self.cycles = 0
        self.peer_read_at = -1e9
        self.warning = ""
        self.started = time.monotonic()
        self.last_document: Optional[dict] = None
        self.metrics_slot: Optional[int] = None
        self.metrics_error: Optional[str] = None
        self.counters = metrics.Counters()
        self.role_watch = metrics.RoleWatch()

    # -- local state --------------------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def _load_state(self) -> dict:
        state = files.read_json(self.state_file)
        if isinstance(state, dict):
            return state
        # The shell agent of 0.2 kept one file per fact: take them over.
        state = {"failures": {}, "secrets": {}, "commandsDone": []}
        applied = (files.read_text(self._path("applied")) or "").strip()
        if applied:
            state["applied"] = {"version": applied, "release": (files.read_text(self._path("applied-release")) or "").strip(),
                                "at": (files.read_text(self._path("applied-at")) or "").strip()}
        failed = (files.read_text(self._path("failed")) or "").strip()
        if failed:
            state["failures"][failed] = {"result": "failed", "error": "failed under the agent of 0.2", "retryable": False,
                                         "attempts": 1, "nextTryAt": 0}
        secrets_at = (files.read_text(self._path("secrets-at")) or "0").strip()
        state["secrets"]["refreshedAt"] = float(secrets_at) if secrets_at.isdigit() else 0.0
        return state

    def save(self) -> None:
        files.write_json(self.state_file, self.state)

    @property
    def applied(self) -> dict:
        return self.state.get("applied") or {}

    def good_dir(self) -> str:
        return self._path("good")

    def good_files(self) -> Dict[str, Tuple[str, str]]:
        """path → (sha256, mode) of the last good bundle."""
        out: Dict[str, Tuple[str, str]] = {}
        for line in (files.read_text(os.path.join(self.good_dir(), "files")) or "").splitlines():
            parts = line.split(" ")
            if len(parts) == 3:
                out[parts[2]] = (parts[0], parts[1])
        return out

    def settings(self, stage: Optional[str] = None) -> Dict[str, str]:
        text = files.read_text(os.path.join(stage or os.path.join(self.good_dir(), "stage"), PATHS["bundleEnv"].lstrip("/")))
        return contract.parse_bundle_env(text) if text else {}

    # -- AWS ----------------------------------------------------------------------------------------------
    def store(self) -> Store:
        """The store, its location re-read every 5 min (instance tags may move it)."""
        if self._store is None or time.monotonic() - self._location_read > 300:
            region = read_location(self.root, None).region
            if self._session is None or self._session.region != region:
                self._session = Session(region)
            location = read_location(self.root, self._session.imds)
            if self._store is not None and self._store.location != location:
                log(f"the configuration store moved to s3://{location.bucket}/{location.prefix} (instance tags)")
                self.state.setdefault("etags", {}).clear()
                self.manifest = None
            self._store = Store(self._session, location)
            self._location_read = time.monotonic()
        return self._store

    # -- the cycle ----------------------------------------------------------------------------------------
    def cycle(self) -> None:
        store = self.store()
        settings = self.settings()
        self.warning = ""
        self.apply_failed = False
        self.recover_refused_agent()
        self.recover()
        self.cycles += 1
        if self.once or self.cycles % COMMAND_POLL_CYCLES == 1:
            self.read_commands(store)
        self.poll_manifest(store)
        role = self.role(settings)
        self.role_watch.observe(role)
        manifest = self.manifest
        if manifest is not None:
            # The peer's status matters while a release rolls out or secrets wait; otherwise once a heartbeat.
            heartbeat = contract.setting(settings, "HEARTBEAT_SECONDS", DEFAULTS["heartbeatSeconds"]) if settings else 0
            if self.once or manifest.version != self.applied.get("version") or (self.state.get("secrets") or {}).get("waitingFor") \
                    or time.monotonic() - self.peer_read_at >= heartbeat:
                self.peer = self.read_peer(store, settings)
                self.others = self.read_others(store, settings)
                self.peer_read_at = time.monotonic()
            decision = policy.decide(self.situation(manifest, role, settings))
            self.decision = decision
            self.track_waiting(manifest, decision)
            if decision.action == "apply":
                log(f"applying version {manifest.version} ({decision.reason})")
                self.apply(store, manifest)
                if "retry" in self.commands or "release" in self.commands:
                    self.done_commands({"retry", "release"})
            elif decision.action in ("wait", "hold", "backoff", "blocked") and decision.reason != self.state.get("lastReason"):
                log(f"version {manifest.version}: {decision.result}: {decision.reason}")
            self.state["lastReason"] = decision.reason
        self.maybe_refresh_secrets(store, role)
        self.write_status(store, role)
        if not self.once:
            self.maybe_send_metrics(store, role)
        if self.agent_id and (files.read_text(self._path("agent-ok")) or "").strip() != self.agent_id:
            files.write_atomic(self._path("agent-ok"), (self.agent_id + "\n").encode())

    def situation(self, manifest: Manifest, role: str, settings: Dict[str, str]) -> policy.Situation:
        failure = self.state.get("failures", {}).get(manifest.version)
        return policy.Situation(
            now=time.time(),
            desired_version=manifest.version,
            desired_release=manifest.release,
            applied_version=self.applied.get("version"),
            role=role,
            node_role=settings.get("NODE_ROLE", "single"),
            peer=self.peer,
            failure=policy.Failure(manifest.version, failure["result"], failure["error"], failure["retryable"],
                                   failure.get("attempts", 1), failure.get("nextTryAt", 0)) if failure else None,
            waiting_since=(self.state.get("waiting") or {}).get("since") if (self.state.get("waiting") or {}).get("version") == manifest.version else None,
            peer_wait_seconds=override("IMAGING_LB_PEER_WAIT_SECONDS") if override("IMAGING_LB_PEER_WAIT_SECONDS") is not None else contract.setting(settings, "PEER_WAIT_SECONDS", DEFAULTS["peerWaitSeconds"]),
            commands=frozenset(self.commands),
            others=self.others,
            after=roll_after(settings),
        )

    def track_waiting(self, manifest: Manifest, decision: policy.Decision) -> None:
        if decision.action in ("wait", "hold"):
            waiting = self.state.get("waiting") or {}
            if waiting.get("version") != manifest.version:
                self.state["waiting"] = {"version": manifest.version, "since": time.time()}
                self.save()
        elif self.state.pop("waiting", None) is not None:
            self.save()

    def poll_manifest(self, store: Store) -> None:
        etag = (self.state.get("etags") or {}).get("manifest") if self.manifest is not None else None
        try:
            manifest = store.manifest(etag)
            self.manifest_error = None
        except (AwsError, SignatureError) as error:
            self.manifest_error = (str(error), getattr(error, "retryable", False))
            self.manifest = self.manifest if isinstance(error, AwsError) else None
            if str(error) != self.state.get("lastManifestError"):
                log(f"manifest: {error}")
                self.state["lastManifestError"] = str(error)
            return
        except ContractError as error:
            self.manifest_error = (f"manifest refused: {error}", False)
            self.manifest = None
            if str(error) != self.state.get("lastManifestError"):
                log(f"manifest refused: {error}")
                self.state["lastManifestError"] = str(error)
            return
        self.state.pop("lastManifestError", None)
        if manifest is not None:
            self.manifest = manifest
            self.state.setdefault("etags", {})["manifest"] = manifest.etag

    def role(self, settings: Dict[str, str]) -> str:
        peer = settings.get("PEER", "") or settings.get("PEERS", "")
        if not peer:
            return "single"
        try:
            out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        return policy.role_of(out, settings.get("MASTER_VIP", ""), True)

    def read_peer(self, store: Store, settings: Dict[str, str]) -> Optional[policy.Peer]:
        name = settings.get("PEER", "")
        if not name:
            return None
        heartbeat = contract.setting(settings, "HEARTBEAT_SECONDS", DEFAULTS["heartbeatSeconds"])
        try:
            status, age = store.status_of(name)
        except AwsError as error:
            log(f"cannot read {name}'s status: {error}")
            return self.peer
        return policy.Peer(name, status, age, heartbeat * DEFAULTS["staleHeartbeats"])

    def read_others(self, store: Store, settings: Dict[str, str]) -> Tuple[policy.Peer, ...]:
        """Three nodes behind NLBs: every other node's status (PEERS); a status that cannot be read keeps the last one read."""
        names = [n for n in settings.get("PEERS", "").split(",") if n]
        heartbeat = contract.setting(settings, "HEARTBEAT_SECONDS", DEFAULTS["heartbeatSeconds"])
        known = {p.name: p for p in self.others}
        out = []
        for name in names:
            try:
                status, age = store.status_of(name)
            except AwsError as error:
                log(f"cannot read {name}'s status: {error}")
                if name in known:
                    out.append(known[name])
                continue
            out.append(policy.Peer(name, status, age, heartbeat * DEFAULTS["staleHeartbeats"]))
        return tuple(out)

    # -- operator commands --------------------------------------------------------------------------------
    def read_commands(self, store: Store) -> None:
        inbox = self._path("inbox")
        if os.path.isdir(inbox):
            for name in sorted(os.listdir(inbox)):
                if name in contract.CONTRACT["commands"]:
                    log(f"operator command on the node: {name}")
                    self.commands.add(name)
                os.unlink(os.path.join(inbox, name))
        try:
            document, etag = store.command((self.state.get("etags") or {}).get("command"))
        except AwsError as error:
            log(f"cannot read the operator's commands: {error}")
            return
        self.state.setdefault("etags", {})["command"] = etag
        if not document:
            return
        ident, command = str(document.get("id", "")), document.get("command")
        if command in contract.CONTRACT["commands"] and ident and ident not in self.state.get("commandsDone", []):
            log(f"operator command from {store.url('command')}: {command} ({document.get('issuedBy', '?')}, id {ident})")
            self.commands.add(command)
            done = self.state.setdefault("commandsDone", [])
            done.append(ident)
            del done[:-20]
            self.state["lastCommand"] = {"id": ident, "command": command, "at": now_iso()}
            self.save()

    def done_commands(self, names: set) -> None:
        self.commands -= names

    # -- recovery of an interrupted apply, or of an agent that never ran ----------------------------------
    def recover_refused_agent(self) -> None:
        """The launcher refused the last good bundle's agent (it never completed a run) and started this one,
        the agent of the bundle before: put that bundle back as the good one, install it, reload, and record
        the refused version so it is not applied again until a new version or an operator's retry."""
        refused = (files.read_text(self._path("agent-refused")) or "").strip()
        previous = self._path("good.previous")
        if not refused or refused != (files.read_text(os.path.join(self.good_dir(), "version")) or "").strip() \
                or not self.agent_dir.endswith("good.previous") or not os.path.isdir(previous):
            return
        log(f"the agent of version {refused} never completed a run: rolling back to the bundle before it")
        shutil.rmtree(self._path("good.refused"), ignore_errors=True)
        os.rename(self.good_dir(), self._path("good.refused"))
        os.rename(previous, self.good_dir())
        self.agent_dir = self.good_dir()
        version = (files.read_text(os.path.join(self.good_dir(), "version")) or "").strip()
        self.state["applied"] = {"version": version, "release": (files.read_text(os.path.join(self.good_dir(), "release")) or "").strip(), "at": now_iso()}
        settings = self.settings()
        entries = [FileEntry(sha, mode, path, "") for path, (sha, mode) in self.good_files().items()]
        self.install(self.good_dir(), entries)
        ok, why = haproxy.reload(settings["RUNTIME_SOCKET"], settings["SERVER_STATE_FILE"], self.root + PATHS["haproxyConfig"])
        self.record_failure(refused, f"version {refused}: its agent never completed a run (see journalctl -u imaging-lb-agent); "
                                     f"rolled back to {version}" + ("" if ok else f"; ROLLBACK RELOAD FAILED: {why}"),
                            False, "rolled-back" if ok else "rollback-failed")
        os.unlink(self._path("agent-refused"))

    def recover(self) -> None:
        pending = files.read_json(self._path("pending.json"))
        if not isinstance(pending, dict):
            return
        version, phase = pending.get("version", "?"), pending.get("phase", "?")
        log(f"an apply of version {version} was interrupted during {phase}: finishing it")
        incoming = self._path("incoming")
        settings = self.settings(os.path.join(incoming, "stage")) if os.path.isdir(incoming) else {}
        if phase in ("reloading", "gating") and settings:
            try:
                if not haproxy.service_active("haproxy.service") or haproxy.worker_pid(settings["RUNTIME_SOCKET"]) is None:
                    ok, why = haproxy.reload(settings["RUNTIME_SOCKET"], settings["SERVER_STATE_FILE"], self.root + PATHS["haproxyConfig"])
                    if not ok:
                        raise ApplyFailed(why, retryable=True)
                ok, why = haproxy.gate(settings["RUNTIME_SOCKET"], settings["HEALTH_URL"], pending.get("before", []),
                                       gate_seconds(settings))
                if not ok:
                    raise ApplyFailed(why, retryable=False, result="rolled-back")
                self.commit(pending, incoming)
                return
            except ApplyFailed as failure:
                self.rollback(pending, str(failure), failure.retryable, failure.result)
                return
        self.rollback(pending, f"interrupted during {phase}", True, "failed")

    # -- apply --------------------------------------------------------------------------------------------
    def apply(self, store: Store, manifest: Manifest) -> None:
        version = manifest.version
        incoming = self._path("incoming")
        self.state["applying"] = {"version": version, "release": manifest.release, "since": time.time()}
        self.write_status(store, None, force=True)
        pending: Optional[dict] = None
        try:
            self.stage(store, manifest, incoming)
            stage = os.path.join(incoming, "stage")
            try:
                settings = self.settings(stage)
                entries = contract.parse_secrets_list(files.read_text(os.path.join(stage, PATHS["secretsList"].lstrip("/"))) or "")
            except ContractError as error:
                raise ApplyFailed(f"version {version} refused: {error}", retryable=False, result="refused") from error
            secrets = self.fetch_secrets(entries)
            self.stage_secrets(secrets, incoming, settings)
            self.validate(manifest, incoming, settings)
            before = self.before_set(settings)
            pending = {"version": version, "release": manifest.release, "phase": "installing", "before": before,
                       "startedAt": time.time(), "secretsVersion": secrets_version(secrets), "firstApply": not self.applied}
            self.snapshot_live(incoming)
            files.write_json(self._path("pending.json"), pending)
            changed = self.install(incoming, manifest.files)
            failpoint("after-install")
            pending["phase"] = "reloading"
            pending["changed"] = changed
            files.write_json(self._path("pending.json"), pending)
            reload_needed = any(p.startswith("/etc/haproxy/") or p == PATHS["haproxyEnv"] for p in changed)
            if reload_needed or haproxy.worker_pid(settings["RUNTIME_SOCKET"]) is None:
                ok, why = haproxy.reload(settings["RUNTIME_SOCKET"], settings["SERVER_STATE_FILE"], self.root + PATHS["haproxyConfig"])
                self._haproxy_version = ""
                if not ok:
                    raise ApplyFailed(f"HAProxy did not reload: {why}", retryable=False, result="rolled-back")
            if PATHS["keepalivedConf"] in changed:
                self.reload_keepalived(files.read_text(os.path.join(self.good_dir(), "stage") + PATHS["keepalivedConf"]) or "")
            pending["phase"] = "gating"
            files.write_json(self._path("pending.json"), pending)
            failpoint("before-gate")
            ok, why = haproxy.gate(settings["RUNTIME_SOCKET"], settings["HEALTH_URL"], before, gate_seconds(settings))
            if not ok:
                raise ApplyFailed(why, retryable=False, result="rolled-back")
            self.commit(pending, incoming)
        except ApplyFailed as failure:
            if pending is None:
                self.record_failure(version, str(failure), failure.retryable, failure.result)
            else:
                self.rollback(pending, str(failure), failure.retryable, failure.result)
        except (AwsError, SignatureError) as error:
            self.record_failure(version, f"version {version}: {error}", getattr(error, "retryable", False),
                                "failed" if getattr(error, "retryable", False) else "refused")
        except OSError as error:
            # A full disk, a read-only file system: nothing half-written stays (files.write_atomic), roll back.
            if pending is None:
                self.record_failure(version, f"version {version}: {error}", True)
            else:
                self.rollback(pending, f"{error}", True, "failed")
        finally:
            self.state.pop("applying", None)
            self.save()

    def stage(self, store: Store, manifest: Manifest, incoming: str) -> None:
        """Every file of the manifest into incoming/stage, from the last good bundle when its sha256 matches."""
        shutil.rmtree(incoming, ignore_errors=True)
        stage = os.path.join(incoming, "stage")
        os.makedirs(stage)
        have = {sha: path for path, (sha, _) in self.good_files().items()}
        for entry in manifest.files:
            target = stage + entry.path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            content = None
            if entry.sha256 in have:
                content = files.read_bytes(os.path.join(self.good_dir(), "stage") + have[entry.sha256])
            if content is None or hashlib.sha256(content).hexdigest() != entry.sha256:
                content = store.file(entry.sha256)
            if hashlib.sha256(content).hexdigest() != entry.sha256:
                raise ApplyFailed(f"version {manifest.version}: {entry.path} does not match its sha256 in the manifest: refused, nothing changed",
                                  retryable=False, result="refused")
            with open(target, "wb") as file:
                file.write(content)
            os.chmod(target, int(entry.mode, 8))
        with open(os.path.join(incoming, "files"), "w", encoding="utf-8") as file:
            file.writelines(f"{e.sha256} {e.mode} {e.path}\n" for e in manifest.files)
        for name, value in (("version", manifest.version), ("release", manifest.release)):
            with open(os.path.join(incoming, name), "w", encoding="utf-8") as file:
                file.write(value + "\n")

    def fetch_secrets(self, entries: List[contract.SecretEntry]) -> List[Tuple[contract.SecretEntry, str, str]]:
        """Every secret of the list: (entry, value, version id). A transient AWS error is retryable; a value
        that is not what its entry needs is refused."""
        session = self.store().session
        out = []
        for entry in entries:
            try:
                value, version_id = session.secret_value(entry.arn)
            except AwsError as error:
                raise ApplyFailed(f"cannot read {entry.arn}: {error} (the instance role needs secretsmanager:GetSecretValue on it)",
                                  retryable=error.retryable or error.code in ("AccessDeniedException", "ResourceNotFoundException")) from error
            if entry.kind == "pem" and "-----BEGIN" not in value:
                raise ApplyFailed(f"{entry.arn} holds no PEM", retryable=False, result="refused")
            if entry.kind == "env" and not contract.env_value_ok(value):
                raise ApplyFailed(f"{entry.target} from {entry.arn}: expected 1-256 of A-Z a-z 0-9 . _ ~ + / = @ % ^ -",
                                  retryable=False, result="refused")
            out.append((entry, value, version_id))
        return out

    def stage_secrets(self, secrets: List[Tuple[contract.SecretEntry, str, str]], incoming: str, settings: Dict[str, str]) -> None:
        """The PEMs and HAProxy's environment file into incoming/secrets (mode 0600), where the check reads them."""
        folder = os.path.join(incoming, "secrets")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        env_lines = []
        for entry, value, _ in secrets:
            if entry.kind == "pem":
                files.write_atomic(folder + entry.target, value.encode(), 0o600)
            else:
                env_lines.append(f"{entry.target}={value}\n")
        files.write_atomic(folder + PATHS["haproxyEnv"], "".join(env_lines).encode(), 0o600)
        self.state.setdefault("secrets", {})["staged"] = secrets_version(secrets)

    def validate(self, manifest: Manifest, incoming: str, settings: Dict[str, str]) -> None:
        """haproxy -dW -c, keepalived -t and the agent's own self-test on the staged files."""
        stage = os.path.join(incoming, "stage")
        secrets = os.path.join(incoming, "secrets")
        certs = os.path.join(incoming, "check-certs")
        shutil.rmtree(certs, ignore_errors=True)
        live_certs = self.root + PATHS["certDir"]
        if os.path.isdir(live_certs):
            shutil.copytree(live_certs, certs)
        else:
            os.makedirs(certs)
        if os.path.isdir(secrets + PATHS["certDir"]):
            for name in os.listdir(secrets + PATHS["certDir"]):
                shutil.copy2(os.path.join(secrets + PATHS["certDir"], name), os.path.join(certs, name))
        error_dir = self.root + PATHS["errorDir"]
        cert_dir = settings.get("CERT_DIR", self.root + PATHS["certDir"])
        # The check reads the staged error pages and PEMs (crt-base, and absolute ca-file paths), not the live ones.
        rewrites = [(error_dir + "/", stage + PATHS["errorDir"] + "/"), (f"crt-base {cert_dir}\n", f"crt-base {certs}\n"),
                    (cert_dir + "/", certs + "/")]
        ok, output = haproxy.check_config(stage + PATHS["haproxyConfig"], secrets + PATHS["haproxyEnv"], rewrites, incoming)
        if not ok:
            tail = " ".join(output.splitlines()[-3:])
            raise ApplyFailed(f"version {manifest.version} refused: haproxy -dW -c: {tail}", retryable=False, result="refused")
        keepalived = stage + PATHS["keepalivedConf"]
        if os.path.exists(keepalived):
            result = subprocess.run(["keepalived", "-t", "-f", keepalived], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                tail = " ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
                raise ApplyFailed(f"version {manifest.version} refused: keepalived -t: {tail}", retryable=False, result="refused")
        for entry in manifest.files:
            if entry.kind in ("agent-launcher", "takeover-script"):
                result = subprocess.run(["bash", "-n", stage + entry.path], capture_output=True, text=True, timeout=30)
                if result.returncode != 0:
                    raise ApplyFailed(f"version {manifest.version} refused: {entry.path}: {result.stderr.strip()}", retryable=False, result="refused")
        package = stage + PATHS["agentPackageDir"]
        if any(e.kind == "agent-module" for e in manifest.files):
            result = subprocess.run([sys.executable, "-m", "imaging_lb_agent", "--self-test"], capture_output=True, text=True, timeout=60,
                                    env={**os.environ, "PYTHONPATH": package})
            if result.returncode != 0:
                tail = " ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
                raise ApplyFailed(f"version {manifest.version} refused: its agent fails its self-test: {tail}", retryable=False, result="refused")

    def before_set(self, settings: Dict[str, str]) -> List[str]:
        """The servers the gate expects healthy after the reload: those healthy now when HAProxy runs the last
        good configuration; else (HAProxy down, or running a configuration that is not the last good one,
        as after a crash mid-apply) the set recorded the last time it did."""
        good_cfg = os.path.join(self.good_dir(), "stage") + PATHS["haproxyConfig"]
        live_cfg = self.root + PATHS["haproxyConfig"]
        if files.read_bytes(good_cfg) is not None and files.read_bytes(good_cfg) == files.read_bytes(live_cfg):
            try:
                names = haproxy.healthy_names(settings["RUNTIME_SOCKET"])
                self.state["lastHealthy"] = names
                return names
            except OSError:
                pass
        return list(self.state.get("lastHealthy", []))

    def snapshot_live(self, incoming: str) -> None:
        """The live secrets (PEMs, HAProxy's environment) as they are now, for a rollback."""
        backup = self._path("rollback")
        shutil.rmtree(backup, ignore_errors=True)
        os.makedirs(backup, mode=0o700)
        for path in self.secret_paths(incoming):
            content = files.read_bytes(self.root + path)
            if content is not None:
                files.write_atomic(backup + path, content, 0o600)

    def secret_paths(self, incoming: Optional[str] = None) -> List[str]:
        paths = {PATHS["haproxyEnv"]}
        for stage in filter(None, [os.path.join(incoming, "stage") if incoming else None, os.path.join(self.good_dir(), "stage")]):
            text = files.read_text(os.path.join(stage, PATHS["secretsList"].lstrip("/")))
            if text:
                try:
                    paths.update(e.target for e in contract.parse_secrets_list(text) if e.kind == "pem")
                except ContractError:
                    pass
        return sorted(paths)

    def install(self, incoming: str, entries: List[FileEntry]) -> List[str]:
        """Every staged file and secret at its path, atomically; the paths that changed."""
        changed = []
        stage = os.path.join(incoming, "stage")
        for entry in entries:
            source, target = stage + entry.path, self.root + entry.path
            if files.same_file(source, target):
                continue
            files.write_atomic(target, files.read_bytes(source) or b"", int(entry.mode, 8))
            changed.append(entry.path)
        secrets = os.path.join(incoming, "secrets")
        for folder, _, names in os.walk(secrets):
            for name in names:
                source = os.path.join(folder, name)
                path = source[len(secrets):]
                if files.same_file(source, self.root + path):
                    continue
                files.write_atomic(self.root + path, files.read_bytes(source) or b"", 0o600)
                changed.append(path)
        return changed

    def reload_keepalived(self, previous_conf: str) -> None:
        """Reloads keepalived — or restarts it when the new configuration adds a process check: keepalived
        subscribes to the kernel's process events only when it starts with one, never at a reload (2.2.7
        to 2.3.x). A restart on the MASTER moves the VIPs to the peer once (which applied before it)."""
        new_conf = files.read_text(self.root + PATHS["keepalivedConf"]) or ""
        adds_process_check = "vrrp_track_process" in new_conf and "vrrp_track_process" not in previous_conf
        if haproxy.service_active("keepalived.service"):
            action = "restart" if adds_process_check else "reload"
            if adds_process_check:
                log("keepalived.conf adds a process check: restarting keepalived (a reload would not subscribe to process events)")
            if not haproxy.systemctl(action, "keepalived.service"):
                raise ApplyFailed(f"keepalived did not {action}", retryable=False, result="rolled-back")
        elif not haproxy.systemctl("enable", "--now", "keepalived.service"):
            raise ApplyFailed("keepalived did not start", retryable=False, result="rolled-back")

    def commit(self, pending: dict, incoming: str) -> None:
        """The staged bundle becomes the last good one."""
        version = pending["version"]
        settings = self.settings(os.path.join(incoming, "stage"))
        shutil.rmtree(os.path.join(incoming, "check-certs"), ignore_errors=True)
        previous_agent = self.agent_files(self.good_dir())
        files.replace_dir(incoming, self.good_dir(), self._path("good.previous"))
        self.state["applied"] = {"version": version, "release": pending["release"], "at": now_iso()}
        secrets = self.state.setdefault("secrets", {})
        secrets.update({"version": pending.get("secretsVersion"), "refreshedAt": time.time()})
        secrets.pop("nextTryAt", None)
        self.state.get("failures", {}).pop(version, None)
        try:
            self.state["lastHealthy"] = haproxy.healthy_names(settings["RUNTIME_SOCKET"])
        except OSError:
            pass
        self.save()
        os.unlink(self._path("pending.json"))
        shutil.rmtree(self._path("rollback"), ignore_errors=True)
        log(f"version {version} applied")
        if not pending.get("firstApply") and PATHS["keepalivedConf"] in pending.get("changed", []):
            self.assert_vips(settings)
        if self.agent_dir and previous_agent != self.agent_files(self.good_dir()):
            self.restart_wanted = True

    def agent_files(self, bundle_dir: str) -> str:
        lines = files.read_text(os.path.join(bundle_dir, "files")) or ""
        return "".join(sorted(l for l in lines.splitlines(True) if PATHS["agentPackageDir"] in l))

    def assert_vips(self, settings: Dict[str, str]) -> None:
        """keepalived adds a new VIP on the MASTER at its reload but runs notify_master only when the state
        changes: the MASTER runs the takeover itself, so EC2 routes the new VIP to it too."""
        if self.role(settings) != "MASTER":
            return
        script = self.root + PATHS["takeoverScript"]
        result = subprocess.run([script], capture_output=True, text=True, timeout=300)
        if result.returncode == 0:
            log("the VIPs are assigned to this node in EC2 (takeover run after the keepalived change)")
        else:
            self.warning = f"the takeover after the keepalived change failed (exit {result.returncode}): run {PATHS['takeoverScript']} on the MASTER"
            log(self.warning)

    def rollback(self, pending: dict, error: str, retryable: bool, result: str) -> None:
        """Puts the last good bundle and the secrets it ran with back, and reloads."""
        version = pending.get("version", "?")
        good = self.good_dir()
        if not os.path.isdir(os.path.join(good, "stage")):
            self.record_failure(version, f"version {version}: {error} (no earlier version to roll back to)", retryable, "failed")
            self._drop_pending()
            return
        log(f"version {version}: {error}; rolling back to {self.applied.get('version')}")
        settings = self.settings()
        problems = []
        try:
            entries = [FileEntry(sha, mode, path, "") for path, (sha, mode) in self.good_files().items()]
            changed = self.install(good, entries)
            backup = self._path("rollback")
            for folder, _, names in os.walk(backup):
                for name in names:
                    source = os.path.join(folder, name)
                    path = source[len(backup):]
                    if not files.same_file(source, self.root + path):
                        files.write_atomic(self.root + path, files.read_bytes(source) or b"", 0o600)
                        changed.append(path)
        except OSError as failure:
            problems.append(f"could not put the last good files back: {failure}")
            changed = []
        ok, why = haproxy.reload(settings["RUNTIME_SOCKET"], settings["SERVER_STATE_FILE"], self.root + PATHS["haproxyConfig"])
        if not ok:
            problems.append(f"the rollback's reload failed: {why}")
        elif not haproxy.answers(settings["HEALTH_URL"]):
            problems.append("HAProxy does not answer after the rollback")
        if PATHS["keepalivedConf"] in changed or PATHS["keepalivedConf"] in pending.get("changed", []):
            if not haproxy.systemctl("reload", "keepalived.service"):
                problems.append("keepalived did not reload")
        self._haproxy_version = ""
        if problems:
            self.record_failure(version, f"version {version}: {error}; ROLLBACK FAILED: {'; '.join(problems)}", retryable, "rollback-failed")
        else:
            self.record_failure(version, f"version {version}: {error}; rolled back to {self.applied.get('version')}", retryable, result)
        self._drop_pending()

    def _drop_pending(self) -> None:
        for name in ("pending.json",):
            try:
                os.unlink(self._path(name))
            except FileNotFoundError:
                pass
        shutil.rmtree(self._path("incoming"), ignore_errors=True)
        shutil.rmtree(self._path("rollback"), ignore_errors=True)

    def record_failure(self, version: str, error: str, retryable: bool, result: str = "failed") -> None:
        self.apply_failed = True
        failures = self.state.setdefault("failures", {})
        previous = failures.get(version) or {}
        attempts = previous.get("attempts", 0) + 1
        failures[version] = {"result": result, "error": error, "retryable": retryable, "attempts": attempts,
                             "nextTryAt": time.time() + policy.retry_delay(attempts) if retryable else 0, "at": now_iso()}
        for old in list(failures)[:-5]:
            del failures[old]
        self.save()
        log(error if not retryable else f"{error} (transient: retried in {policy.retry_delay(attempts)}s)")

    # -- secrets refresh ----------------------------------------------------------------------------------
    def maybe_refresh_secrets(self, store: Store, role: str) -> None:
        settings = self.settings()
        if not settings or os.path.exists(self._path("pending.json")):
            return
        secrets = self.state.setdefault("secrets", {})
        peer_waiting = any(p is not None and not p.stale and bool(p.status) and
                           (p.status.get("secrets") or {}).get("waitingFor") not in (None, secrets.get("version"))
                           for p in (self.peer, *self.others))
        due = policy.secrets_due(policy.SecretsSituation(
            now=time.time(), refreshed_at=float(secrets.get("refreshedAt") or 0), checked_at=float(secrets.get("checkedAt") or 0),
            interval=float(os.environ.get("IMAGING_LB_SECRETS_REFRESH_SECONDS") or contract.setting(settings, "SECRETS_REFRESH_SECONDS", DEFAULTS["secretsRefreshSeconds"])),
            next_try_at=secrets.get("nextTryAt"), commands=frozenset(self.commands), peer_waiting=peer_waiting,
            waiting=bool(secrets.get("waitingFor"))))
        if not due:
            return
        secrets["checkedAt"] = time.time()
        text = files.read_text(os.path.join(self.good_dir(), "stage", PATHS["secretsList"].lstrip("/"))) or ""
        try:
            fetched = self.fetch_secrets(contract.parse_secrets_list(text))
        except (ApplyFailed, ContractError) as error:
            retryable = getattr(error, "retryable", False)
            secrets.update({"error": str(error), "result": "retrying" if retryable else "failed",
                            "nextTryAt": time.time() + policy.retry_delay(secrets.get("attempts", 0) + 1)})
            secrets["attempts"] = secrets.get("attempts", 0) + 1
            log(f"secrets refresh: {error}")
            self.save()
            return
        secrets.pop("attempts", None)
        secrets.pop("nextTryAt", None)
        version = secrets_version(fetched)
        decision = policy.decide_secrets(version, secrets.get("version") or "", secrets.get("failedVersion"),
                                         role, settings.get("NODE_ROLE", "single"), self.peer, frozenset(self.commands),
                                         self.others, roll_after(settings))
        self.commands.discard("refresh")
        if decision.action == "idle":
            secrets.update({"refreshedAt": time.time(), "result": "ok", "error": None})
            secrets.pop("waitingFor", None)
            self.save()
            return
        if decision.action in ("wait", "hold", "blocked"):
            secrets.update({"result": decision.result, "error": decision.reason})
            secrets["waitingFor"] = version if decision.action == "wait" else None
            self.save()
            return
        log(f"secrets changed ({decision.reason}): checking and reloading")
        self.apply_secrets(store, fetched, version, settings)

    def apply_secrets(self, store: Store, fetched: List[Tuple[contract.SecretEntry, str, str]], version: str, settings: Dict[str, str]) -> None:
        secrets = self.state["secrets"]
        work = self._path("incoming")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        shutil.copytree(os.path.join(self.good_dir(), "stage"), os.path.join(work, "stage"))
        shutil.copy2(os.path.join(self.good_dir(), "files"), os.path.join(work, "files"))
        self.state["applying"] = {"version": self.applied.get("version"), "release": self.applied.get("release"), "secrets": version}
        self.write_status(store, None, force=True)
        pending = None
        try:
            self.stage_secrets(fetched, work, settings)
            manifest_files = [FileEntry(sha, mode, path, "") for path, (sha, mode) in self.good_files().items()]
            self.validate(Manifest(self.applied.get("version", "?"), "", [], "", ""), work, settings)
            before = self.before_set(settings)
            pending = {"version": self.applied.get("version"), "release": self.applied.get("release"), "phase": "installing",
                       "before": before, "secretsVersion": version, "refresh": True}
            self.snapshot_live(work)
            files.write_json(self._path("pending.json"), pending)
            changed = self.install(work, manifest_files)
            pending.update({"phase": "reloading", "changed": changed})
            files.write_json(self._path("pending.json"), pending)
            if any(p.startswith(PATHS["certDir"]) for p in changed):
                ok, why = haproxy.reload(settings["RUNTIME_SOCKET"], settings["SERVER_STATE_FILE"], self.root + PATHS["haproxyConfig"])
                if not ok:
                    raise ApplyFailed(f"HAProxy did not reload: {why}", retryable=False, result="rolled-back")
                pending["phase"] = "gating"
                files.write_json(self._path("pending.json"), pending)
                ok, why = haproxy.gate(settings["RUNTIME_SOCKET"], settings["HEALTH_URL"], before, gate_seconds(settings))
                if not ok:
                    raise ApplyFailed(why, retryable=False, result="rolled-back")
            if PATHS["haproxyEnv"] in changed:
                log("HAProxy's environment changed: it takes effect at HAProxy's next restart")
            self.commit(pending, work)
            secrets.update({"result": "ok", "error": None, "failedVersion": None})
            secrets.pop("waitingFor", None)
            log(f"secrets refreshed (version {version[:12]})")
        except ApplyFailed as failure:
            secrets.update({"failedVersion": version, "result": "failed", "error": f"refreshed secrets refused: {failure}"})
            if pending is not None:
                self.rollback(pending, f"refreshed secrets: {failure}", False, "applied")
                # The bundle itself is still good: only the secrets were refused.
                self.state.get("failures", {}).pop(self.applied.get("version"), None)
            log(f"refreshed secrets refused, the previous ones kept: {failure}")
            secrets["refreshedAt"] = time.time()
        except OSError as error:
            if pending is not None:
                self.rollback(pending, f"refreshed secrets: {error}", True, "applied")
                self.state.get("failures", {}).pop(self.applied.get("version"), None)
            secrets.update({"result": "retrying", "error": str(error), "nextTryAt": time.time() + policy.retry_delay(1)})
        finally:
            self.state.pop("applying", None)
            shutil.rmtree(work, ignore_errors=True)
            self.save()

    # -- status -------------------------------------------------------------------------------------------
    def haproxy_version(self) -> str:
        if not self._haproxy_version:
            self._haproxy_version = haproxy.version()
        return self._haproxy_version

    def status_document(self, role: Optional[str]) -> dict:
        settings = self.settings()
        manifest = self.manifest
        applied = self.applied
        applying = self.state.get("applying")
        error, retryable, next_try, result = None, False, None, "applied"
        if applying:
            result = "applying"
        elif self.manifest_error is not None and (manifest is None or manifest.version != applied.get("version")):
            error, retryable = self.manifest_error
            result = "retrying" if retryable else "refused"
        elif manifest is not None and manifest.version != applied.get("version"):
            failure = self.state.get("failures", {}).get(manifest.version)
            decision = self.decision
            if failure and failure.get("retryable"):
                result, error, retryable, next_try = "retrying", failure["error"], True, failure.get("nextTryAt")
            elif failure:
                result, error = failure["result"], failure["error"]
            elif decision is not None:
                result, error = decision.result, decision.reason or None
        runtime = settings.get("RUNTIME_SOCKET")
        running = bool(runtime) and haproxy.worker_pid(runtime, attempts=2) is not None
        secrets = self.state.get("secrets", {})
        return {
            "format": contract.CONTRACT["status"]["format"],
            "node": self.store().location.node,
            "environment": self.store().location.environment,
            "agentVersion": self.agent_id or None,
            "desiredVersion": manifest.version if manifest else None,
            "desiredRelease": manifest.release if manifest else None,
            "appliedVersion": applied.get("version"),
            "appliedRelease": applied.get("release"),
            "appliedAt": applied.get("at"),
            "result": result,
            "error": error,
            "retryable": retryable,
            "nextRetryAt": now_iso(next_try) if next_try else None,
            "warning": self.warning or None,
            "role": role if role is not None else self.role(settings),
            "haproxyVersion": self.haproxy_version() or None,
            "haproxyRunning": running,
            "secrets": {
                "version": secrets.get("version"),
                "refreshedAt": now_iso(secrets["refreshedAt"]) if secrets.get("refreshedAt") else None,
                "result": secrets.get("result", "ok"),
                "error": secrets.get("error"),
                "failedVersion": secrets.get("failedVersion"),
                "waitingFor": secrets.get("waitingFor"),
            },
            "certificates": self.certificates(),
            "lastCommand": self.state.get("lastCommand"),
            "storeSource": self.store().location.source,
            "metricsError": self.metrics_error,
            "pollSeconds": contract.setting(settings, "POLL_SECONDS", DEFAULTS["pollSeconds"]) if settings else DEFAULTS["pollSeconds"],
            "heartbeatSeconds": contract.setting(settings, "HEARTBEAT_SECONDS", DEFAULTS["heartbeatSeconds"]) if settings else DEFAULTS["heartbeatSeconds"],
        }

    def certificates(self) -> List[dict]:
        """Each installed PEM's end of validity (openssl), cached by content."""
        cache = self.state.setdefault("certCache", {})
        out = []
        for path in self.secret_paths():
            if not path.endswith(".pem"):
                continue
            content = files.read_bytes(self.root + path)
            if content is None:
                continue
            digest = hashlib.sha256(content).hexdigest()
            if digest not in cache:
                try:
                    result = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=content, capture_output=True, timeout=10)
                    text = result.stdout.decode().strip()
                    cache[digest] = text.split("=", 1)[1] if result.returncode == 0 and "=" in text else None
                except (OSError, subprocess.SubprocessError):
                    cache[digest] = None
            not_after = cache.get(digest)
            out.append({"path": path, "notAfter": not_after})
        for key in list(cache)[:-20]:
            del cache[key]
        return out

    def write_status(self, store: Store, role: Optional[str], force: bool = False) -> None:
        """The status, when it changed or a heartbeat is due (a reader tells a silent node by its age)."""
        document = self.status_document(role)
        self.last_document = document
        settings = self.settings()
        heartbeat = contract.setting(settings, "HEARTBEAT_SECONDS", DEFAULTS["heartbeatSeconds"]) if settings else DEFAULTS["heartbeatSeconds"]
        if not force and document == self.last_status and time.monotonic() - self.last_status_write < heartbeat:
            return
        stamped = dict(document, updatedAt=now_iso())
        try:
            store.put_status(stamped)
        except AwsError as error:
            log(f"could not write the status to {store.url('status')}: {error} (the next cycle tries again)")
            return
        files.write_json(self._path("status.json"), stamped)
        self.last_status = document
        self.last_status_write = time.monotonic()

    # -- metrics ------------------------------------------------------------------------------------------
    def metrics_interval(self, settings: Dict[str, str]) -> int:
        """Seconds between two sends (bundle.env METRICS_SECONDS; IMAGING_LB_METRICS_SECONDS overrides it in
        tests); 0, or a bundle without the setting: nothing is sent."""
        value = override("IMAGING_LB_METRICS_SECONDS")
        if value is not None:
            return value
        return contract.setting(settings, "METRICS_SECONDS", 0) if settings else 0

    def maybe_send_metrics(self, store: Store, role: str) -> None:
        """The node's figures to CloudWatch once an interval (the long-lived agent only: --once sends none).
        A failed send is logged when its error changes, shown in the status (metricsError) and not retried
        before the next interval."""
        settings = self.settings()
        slot = metrics.slot(self.metrics_interval(settings))
        if slot is None or slot == self.metrics_slot:
            return
        self.metrics_slot = slot
        runtime = settings.get("RUNTIME_SOCKET", "")
        try:
            backends: Optional[List[metrics.Backend]] = metrics.backends(haproxy.runtime(runtime, "show stat")) if runtime else None
        except OSError:
            backends = None
        serving = backends is not None and haproxy.answers(settings.get("HEALTH_URL", ""))
        document = self.last_document or {}
        changes = self.role_watch.take()
        written = self.last_status_write or self.started
        snapshot = metrics.Snapshot(
            environment=store.location.environment, node=store.location.node, vrrp=bool(settings.get("MASTER_VIP")),
            serving=serving, role=role, role_changes=changes, result=str(document.get("result") or "applied"),
            status_age=time.monotonic() - written, backends=backends, certificates=list(document.get("certificates") or []),
            now=time.time())
        error: Optional[str] = None
        try:
            for chunk in metrics.chunks(metrics.build(snapshot, self.counters)):
                store.session.put_metric_data(metrics.METRICS["namespace"], chunk)
        except AwsError as failure:
            error = f"{failure} (the instance role needs cloudwatch:PutMetricData for namespace {metrics.METRICS['namespace']})" \
                if failure.code in ("AccessDenied", "AccessDeniedException") else str(failure)
            self.role_watch.changes += changes
        if error != self.metrics_error:
            log(f"metrics: {error}" if error else "metrics: sent to CloudWatch again")
        self.metrics_error = error


def secrets_version(secrets: List[Tuple[contract.SecretEntry, str, str]]) -> str:
    """Which secrets, in which versions (never their values): a digest of ARN and version id."""
    text = "".join(f"{e.kind} {e.arn} {e.target} {vid}\n" for e, _, vid in sorted(secrets, key=lambda s: (s[0].arn, s[0].target)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Lock:
    """The agent's run lock (shared with the agent of 0.2 and an operator's --once)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: Optional[int] = None

    def acquire(self, wait_seconds: float) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    return False
                time.sleep(0.2)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def run_once(agent: Agent, boot: bool) -> int:
    """One cycle. Exit 1 when this cycle's apply failed, or (--boot) when the desired version is not applied
    at its end; 0 otherwise (a failed version left alone, a wait for the peer)."""
    agent.once = True
    lock = Lock(agent._path("lock"))
    if not lock.acquire(0):
        if not boot:
            log("another run is applying: skipped")
            return 0
        log("another run is applying: waiting for it (at most 600 s)")
        if not lock.acquire(600):
            log("the run in progress did not end within 600 s")
            return 1
    try:
        agent.cycle()
    finally:
        lock.release()
    manifest = agent.manifest
    applied = manifest is not None and manifest.version == agent.applied.get("version")
    if boot and not applied:
        why = agent.decision.reason if agent.decision else (agent.manifest_error or ("?",))[0]
        log(f"version {manifest.version if manifest else '?'} is not applied: {why}")
        return 1
    return 1 if agent.apply_failed else 0


def run_daemon(agent: Agent) -> int:
    lock = Lock(agent._path("lock"))
    while True:
        started = time.monotonic()
        settings = agent.settings()
        poll = override("IMAGING_LB_POLL_SECONDS") or (contract.setting(settings, "POLL_SECONDS", DEFAULTS["pollSeconds"]) if settings else DEFAULTS["pollSeconds"])
        if lock.acquire(poll):
            try:
                agent.cycle()
            except (AwsError, ContractError, OSError) as error:
                log(f"cycle failed: {error}")
            finally:
                lock.release()
            if agent.restart_wanted:
                log("the good bundle carries another agent: restarting into it")
                return RESTART_EXIT
        time.sleep(max(0.0, poll - (time.monotonic() - started)))
