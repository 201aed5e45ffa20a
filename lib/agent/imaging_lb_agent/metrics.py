"""The node's figures for CloudWatch: what the stack's alarms and dashboard watch (see contract.json
"metrics": namespace, names, units and dimensions are read from there, never written here).

One PutMetricData per interval (60 s) carries every figure of the node: per backend the servers UP and
configured, the current sessions, the connection errors and 5xx responses since the last send; HAProxy
serving or not; in a pair the VRRP role and the role changes seen; whether the rollout failed; the age of
the last status written; the days left of each installed certificate. Building the data is pure (the tests
drive it with plain values); sending is one signed HTTPS request over the agent's kept-alive connection.
"""
from __future__ import annotations

import re
import ssl
import time
from typing import Dict, List, Mapping, NamedTuple, Optional

from .contract import CONTRACT

METRICS = CONTRACT["metrics"]
FAILED_RESULTS = frozenset(CONTRACT["status"]["failedResults"])
MAX_DATA_PER_CALL = 1000  # CloudWatch's limit of MetricData entries in one PutMetricData


class Backend(NamedTuple):
    name: str
    mode: str  # "http" or "tcp" (from the BACKEND row: http backends count responses)
    servers_up: int
    servers_configured: int
    sessions: int
    connection_errors: int  # HAProxy's counter since its worker started
    http_5xx: Optional[int]  # the same, None for tcp backends


def _int(value: str) -> int:
    return int(value) if value.strip().lstrip("-").isdigit() else 0


def server_up(status: str) -> bool:
    """UP (also "UP 1/3", going down but still up), DRAIN (healthy, taking no new clients: an operator's drain
    or weight 0) or "no check"; not DOWN, NOLB or in maintenance."""
    return status.startswith("UP") or status in ("DRAIN", "no check")


def backends(show_stat: str) -> List[Backend]:
    """The backends the contract's backendPattern selects, from `show stat` output (CSV with a `# ` header)."""
    lines = show_stat.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise OSError("show stat gave no header")
    columns = {name: i for i, name in enumerate(lines[0][2:].split(","))}
    pattern = re.compile(METRICS["backendPattern"])
    rows: Dict[str, Dict[str, str]] = {}
    servers: Dict[str, List[Dict[str, str]]] = {}
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) < len(columns) - 1:
            continue
        row = {name: fields[i] if i < len(fields) else "" for name, i in columns.items()}
        if not pattern.search(row["pxname"]):
            continue
        if row["svname"] == "BACKEND":
            rows[row["pxname"]] = row
        elif row["svname"] != "FRONTEND":
            servers.setdefault(row["pxname"], []).append(row)
    out = []
    for name, row in sorted(rows.items()):
        active = [s for s in servers.get(name, []) if s.get("bck", "0") != "1"]
        http = row.get("mode", "") == "http" or row.get("hrsp_5xx", "") != ""
        out.append(Backend(
            name=name,
            mode="http" if http else "tcp",
            servers_up=sum(1 for s in active if server_up(s["status"])),
            servers_configured=len(active),
            sessions=_int(row.get("scur", "0")),
            connection_errors=_int(row.get("econ", "0")),
            http_5xx=_int(row.get("hrsp_5xx", "0")) if http else None,
        ))
    return out


def days_left(not_after: str, now: float) -> Optional[float]:
    """Days from `now` until an OpenSSL date such as 'Jun  1 12:00:00 2027 GMT' (None when unreadable)."""
    try:
        return round((ssl.cert_time_to_seconds(not_after) - now) / 86400.0, 2)
    except (ValueError, TypeError):
        return None


def certificate_name(pem_path: str) -> str:
    """The Certificate dimension: the PEM's file name without .pem (the certificate's name in the environment file)."""
    name = pem_path.rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".pem") else name


class Snapshot(NamedTuple):
    """What the agent knows at a send, as plain values."""
    environment: str
    node: str
    vrrp: bool
    serving: bool  # HAProxy's worker answers its runtime API and /healthz
    role: str  # MASTER, BACKUP or single
    role_changes: int
    result: str  # the status's result
    status_age: float  # seconds since the status was last written to S3
    backends: Optional[List[Backend]]  # None: the runtime API did not answer
    certificates: List[Mapping]  # the status's [{path, notAfter}]
    now: float


def datum(name: str, value: float, **dimensions: str) -> dict:
    """One MetricData entry of contract metric `name`: its unit, and exactly its scope's dimensions in order."""
    definition = METRICS["definitions"][name]
    wanted = METRICS["scopes"][definition["scope"]]
    if sorted(dimensions) != sorted(wanted):
        raise ValueError(f"metric {name}: dimensions {sorted(dimensions)}, the contract says {wanted}")
    return {
        "MetricName": name,
        "Dimensions": [{"Name": d, "Value": dimensions[d]} for d in wanted],
        "Value": float(value),
        "Unit": definition["unit"],
    }


class Counters:
    """HAProxy's counters as deltas between two sends. A worker started since the last send (a reload)
    counts from zero again, so its whole count is the delta; the first send after the agent starts has
    no baseline and sends no delta."""

    def __init__(self) -> None:
        self.last: Dict[str, int] = {}

    def delta(self, key: str, value: int) -> Optional[int]:
        previous = self.last.get(key)
        self.last[key] = value
        if previous is None:
            return None
        return value - previous if value >= previous else value


def build(s: Snapshot, counters: Counters) -> List[dict]:
    """Every MetricData entry of a send."""
    node = {"Environment": s.environment, "Node": s.node}
    out = [
        datum("HaproxyServing", 1 if s.serving else 0, **node),
        datum("RolloutFailed", 1 if s.result in FAILED_RESULTS else 0, **node),
        datum("StatusAge", round(s.status_age), **node),
    ]
    if s.vrrp:
        roles = METRICS["haRoles"]
        role = "MASTER" if s.role == "MASTER" else ("BACKUP" if s.serving else "FAULT")
        out.append(datum("HaRole", roles[role], **node))
        out.append(datum("RoleChanges", s.role_changes, **node))
    for b in s.backends or []:
        where = dict(node, Backend=b.name)
        out.append(datum("ServersUp", b.servers_up, **where))
        out.append(datum("ServersConfigured", b.servers_configured, **where))
        out.append(datum("Sessions", b.sessions, **where))
        errors = counters.delta(f"{b.name}/econ", b.connection_errors)
        if errors is not None:
            out.append(datum("ConnectionErrors", errors, **where))
        if b.http_5xx is not None:
            responses = counters.delta(f"{b.name}/5xx", b.http_5xx)
            if responses is not None:
                out.append(datum("Http5xx", responses, **where))
    for cert in s.certificates:
        left = days_left(cert.get("notAfter") or "", s.now)
        if left is not None:
            out.append(datum("CertificateDaysLeft", left, **dict(node, Certificate=certificate_name(cert["path"]))))
    return out


class RoleWatch:
    """Counts the times this node became or stopped being MASTER, sampled at every poll."""

    def __init__(self) -> None:
        self.last: Optional[bool] = None
        self.changes = 0

    def observe(self, role: str) -> None:
        master = role == "MASTER"
        if self.last is not None and master != self.last:
            self.changes += 1
        self.last = master

    def take(self) -> int:
        changes, self.changes = self.changes, 0
        return changes


def slot(interval: float, now: Optional[float] = None) -> Optional[int]:
    """The send slot `now` (wall-clock seconds) falls in, or None outside the sending half of it. One send per
    interval, in the second half of the interval's wall-clock window (a minute: from :30 on): CloudWatch
    counts periods by the wall clock, so each minute then holds exactly one datapoint of the node, however its
    polls fall (a send 60 s after the last one would drift into some minutes twice and skip others)."""
    if interval <= 0:
        return None
    index, offset = divmod(time.time() if now is None else now, interval)
    return int(index) if offset >= interval / 2 else None


def chunks(data: List[dict]) -> List[List[dict]]:
    return [data[i:i + MAX_DATA_PER_CALL] for i in range(0, len(data), MAX_DATA_PER_CALL)] or [[]]
