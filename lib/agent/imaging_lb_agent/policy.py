"""The agent's decisions, as pure functions of what it knows: whether to apply the desired version now, wait
for the peer, hold, back off or leave a failed version alone; when to refresh the secrets and whether a
refreshed set may be applied; this node's role; how long to wait before a retry. No I/O here: the tests
drive every rule with plain values.

Rules of a pair (two nodes behind floating VIPs):
- The node serving the VIPs (MASTER) applies a new release last, after its peer reports it applied; the
  other node goes first. When the VRRP roles do not tell (split brain: both hold the VIPs; or neither does),
  the configured secondary goes first. A node never starts while its peer's fresh status says it is applying.
- A peer whose status is older than a few heartbeats is stale (its agent or node is down): the other node
  then applies alone — its own gate and rollback still protect it — instead of holding forever.
- A peer that failed the release makes the other node hold (keep its version, keep serving) until a new
  release, an operator's `retry` on the peer, or an operator's `release` on this node.
- Three nodes behind NLBs (vipMode nlb; no VRRP, every node serves): a fixed roll order (the bundle's
  ROLL_AFTER: the nodes this one applies after; the secondaries in name order, the primary last). A node
  applies once every node before it reports the release applied (a silent one is skipped, a failed one holds
  it), and never while another node's fresh status says it is applying: one node at a time, like a pair.
  Two nodes behind NLBs keep the pair's rule (no MASTER: the secondary first), which is the same order.
- A failed version is retried only when the failure was transient (a download, AWS, an interrupted apply),
  with exponential back-off; a refused or rolled-back version waits for a new version or an operator's retry.
"""
from __future__ import annotations

from typing import FrozenSet, Mapping, NamedTuple, Optional, Tuple

FAILED_RESULTS = frozenset({"held", "failed", "rolled-back", "rollback-failed", "refused", "bootstrap-failed"})

RETRY_FIRST_SECONDS = 30
RETRY_MAX_SECONDS = 3600


def retry_delay(attempts: int) -> int:
    """Seconds before attempt `attempts + 1` of a transiently failed version: 30 s, 1, 2, 4 ... min, at most 1 h."""
    return min(RETRY_FIRST_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


class Peer(NamedTuple):
    name: str
    status: Optional[Mapping]  # None: the peer has written no status at all
    age: Optional[float]  # seconds since it was written, by S3's clock
    stale_after: float

    @property
    def stale(self) -> bool:
        return self.status is None or self.age is None or self.age > self.stale_after

    def said(self) -> str:
        if self.status is None:
            return "no status"
        s = self.status
        age = f", {self.age:.0f}s ago" if self.age is not None else ""
        return f"{s.get('result')} release {s.get('appliedRelease')}{age}"


class Failure(NamedTuple):
    version: str
    result: str  # failed, rolled-back, rollback-failed, refused
    error: str
    retryable: bool
    attempts: int
    next_try_at: float


class Situation(NamedTuple):
    now: float
    desired_version: str
    desired_release: str
    applied_version: Optional[str]
    role: str  # single, MASTER, BACKUP
    node_role: str  # single, primary, secondary
    peer: Optional[Peer]
    failure: Optional[Failure]  # the desired version's last failure, if any
    waiting_since: Optional[float]
    peer_wait_seconds: float
    commands: FrozenSet[str] = frozenset()  # operator commands not yet acted on: retry, release
    # Three nodes behind NLBs: every other node's status (peer is None then), and the names of those this node applies after.
    others: Tuple[Peer, ...] = ()
    after: FrozenSet[str] = frozenset()


class Decision(NamedTuple):
    action: str  # idle, apply, wait, hold, backoff, blocked
    result: str  # what the status says meanwhile
    reason: str


def role_of(addresses: str, master_vip: str, has_peer: bool) -> str:
    """MASTER when this node holds the pair's first VIP (keepalived adds it exactly while MASTER), BACKUP
    otherwise, single without a peer. `addresses`: `ip -o -4 addr show` output."""
    if not has_peer:
        return "single"
    for line in addresses.splitlines():
        fields = line.split()
        if "inet" in fields and fields[fields.index("inet") + 1].split("/")[0] == master_vip:
            return "MASTER"
    return "BACKUP"


def goes_first(role: str, node_role: str, peer: Optional[Peer]) -> Tuple[bool, str]:
    """Whether this node applies a release before its peer, and why."""
    if peer is None or role == "single":
        return True, "single node"
    me_master = role == "MASTER"
    peer_master = not peer.stale and peer.status is not None and peer.status.get("role") == "MASTER"
    if me_master and not peer_master:
        return False, "this node holds the VIPs: it applies after its peer"
    if not me_master and peer_master:
        return True, "the peer holds the VIPs: this node applies first"
    why = "both nodes hold the VIPs (split brain)" if me_master else "neither node holds the VIPs"
    return node_role == "secondary", f"{why}: the secondary node applies first"


def peer_applying(peer: Optional[Peer]) -> bool:
    return peer is not None and not peer.stale and peer.status is not None and peer.status.get("result") == "applying"


def decide(s: Situation) -> Decision:
    """What to do about the desired version now."""
    if s.desired_version == s.applied_version:
        return Decision("idle", "applied", "")
    f = s.failure
    if f is not None and "retry" not in s.commands:
        if not f.retryable:
            return Decision("blocked", f.result, f"{f.error} (not retried: deploy a new version, or `imaging-lb retry`)")
        if s.now < f.next_try_at:
            return Decision("backoff", "retrying", f"{f.error}; attempt {f.attempts + 1} in {f.next_try_at - s.now:.0f}s")
    if s.applied_version is None:
        return Decision("apply", "applying", "nothing applied yet")
    if s.others:
        return decide_in_order(s)
    if s.peer is None:
        return Decision("apply", "applying", "single node")
    first, why = goes_first(s.role, s.node_role, s.peer)
    peer = s.peer
    if first:
        if peer_applying(peer):
            return Decision("wait", "waiting-for-peer", f"{peer.name} is applying: this node waits for it to finish ({why})")
        return Decision("apply", "applying", why)
    if "release" in s.commands:
        return Decision("apply", "applying", f"released by an operator ({why})")
    if peer.stale:
        return Decision("apply", "applying", f"{peer.name} is silent ({peer.said()}): this node applies alone")
    status = peer.status or {}
    if status.get("appliedRelease") == s.desired_release and status.get("result") == "applied":
        return Decision("apply", "applying", f"{peer.name} applied release {s.desired_release}")
    if status.get("desiredRelease") == s.desired_release and status.get("result") in FAILED_RESULTS:
        error = status.get("error") or status.get("result")
        return Decision("hold", "held", f"{peer.name} did not apply release {s.desired_release} ({error}): this node keeps "
                                        f"version {s.applied_version} (`imaging-lb retry` the peer, or `imaging-lb release` this node)")
    waited = s.now - (s.waiting_since if s.waiting_since is not None else s.now)
    if waited >= s.peer_wait_seconds:
        return Decision("hold", "held", f"{peer.name} has not applied release {s.desired_release} in {waited:.0f}s "
                                        f"(its status: {peer.said()}): this node keeps version {s.applied_version}")
    return Decision("wait", "waiting-for-peer", f"{why}; {peer.name}: {peer.said()}")


def decide_in_order(s: Situation) -> Decision:
    """Three nodes behind NLBs: the roll order (`s.after`: the nodes before this one), one node at a time."""
    busy = [p for p in s.others if peer_applying(p)]
    if busy:
        return Decision("wait", "waiting-for-peer", f"{busy[0].name} is applying: this node waits for it to finish (one node at a time)")
    if "release" in s.commands:
        return Decision("apply", "applying", "released by an operator (roll order)")
    before = [p for p in s.others if p.name in s.after]
    if not before:
        return Decision("apply", "applying", "this node is first in the roll order")
    pending = []
    for peer in before:
        status = peer.status or {}
        if peer.stale or (status.get("appliedRelease") == s.desired_release and status.get("result") == "applied"):
            continue
        if status.get("desiredRelease") == s.desired_release and status.get("result") in FAILED_RESULTS:
            error = status.get("error") or status.get("result")
            return Decision("hold", "held", f"{peer.name} did not apply release {s.desired_release} ({error}): this node keeps "
                                            f"version {s.applied_version} (`imaging-lb retry` {peer.name}, or `imaging-lb release` this node)")
        pending.append(peer)
    if not pending:
        silent = [p.name for p in before if p.stale]
        return Decision("apply", "applying", f"{', '.join(p.name for p in before)} applied release {s.desired_release}"
                                             + (f" or {'is' if len(silent) == 1 else 'are'} silent ({', '.join(silent)})" if silent else ""))
    peer = pending[0]
    waited = s.now - (s.waiting_since if s.waiting_since is not None else s.now)
    if waited >= s.peer_wait_seconds:
        return Decision("hold", "held", f"{peer.name} has not applied release {s.desired_release} in {waited:.0f}s "
                                        f"(its status: {peer.said()}): this node keeps version {s.applied_version}")
    return Decision("wait", "waiting-for-peer", f"roll order: {peer.name} applies before this node; {peer.name}: {peer.said()}")


SECRETS_RECHECK_SECONDS = 30


class SecretsSituation(NamedTuple):
    now: float
    refreshed_at: float  # the last complete refresh
    checked_at: float  # the last fetch, complete or not
    interval: float
    next_try_at: Optional[float]  # a transient refresh failure's retry time
    commands: FrozenSet[str]
    peer_waiting: bool  # the peer fetched another secrets version and waits for this node's
    waiting: bool  # this node fetched a new version and waits for its peer


def secrets_due(s: SecretsSituation) -> bool:
    """Whether to fetch the secrets again now: every `interval`; at once on an operator's refresh or when the
    peer waits for this node; every 30 s while this node waits for its peer; a failed fetch at its retry time."""
    if "refresh" in s.commands:
        return True
    if s.peer_waiting or s.waiting:
        return s.now - s.checked_at >= SECRETS_RECHECK_SECONDS
    if s.next_try_at is not None:
        return s.now >= s.next_try_at
    return s.now - s.refreshed_at >= s.interval


def decide_secrets(version: str, installed: str, failed: Optional[str], role: str, node_role: str,
                   peer: Optional[Peer], commands: FrozenSet[str], others: Tuple[Peer, ...] = (),
                   after: FrozenSet[str] = frozenset()) -> Decision:
    """Whether a freshly fetched secrets set (`version`: its ARNs and version ids) may be applied now. Three
    nodes behind NLBs (`others`, `after`): after every node before this one in the roll order."""
    if version == installed:
        return Decision("idle", "applied", "")
    if version == failed and "retry" not in commands and "refresh" not in commands:
        return Decision("blocked", "failed", "this secrets version failed before: not retried until it changes or an operator asks")
    if others:
        if "release" in commands:
            return Decision("apply", "applying", "released by an operator (roll order)")
        for p in others:
            if p.name not in after or p.stale:
                continue
            secrets = (p.status or {}).get("secrets") or {}
            if secrets.get("failedVersion") == version:
                return Decision("hold", "held", f"{p.name} could not use these secrets: this node keeps its own")
            if secrets.get("version") != version:
                return Decision("wait", "waiting-for-peer", f"roll order: {p.name} refreshes before this node")
        return Decision("apply", "applying", "the nodes before this one serve these secrets" if after else "this node is first in the roll order")
    first, why = goes_first(role, node_role, peer)
    if first or peer is None or "release" in commands:
        return Decision("apply", "applying", why)
    if peer.stale:
        return Decision("apply", "applying", f"{peer.name} is silent: this node refreshes alone")
    secrets = (peer.status or {}).get("secrets") or {}
    if secrets.get("version") == version:
        return Decision("apply", "applying", f"{peer.name} serves these secrets")
    if secrets.get("failedVersion") == version:
        return Decision("hold", "held", f"{peer.name} could not use these secrets: this node keeps its own")
    return Decision("wait", "waiting-for-peer", f"{why}; {peer.name} refreshes first")
