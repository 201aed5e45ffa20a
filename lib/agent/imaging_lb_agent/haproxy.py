"""HAProxy as the agent drives it: the configuration check, the runtime API (a UNIX socket, spoken to
directly: no socat, no shell), the reload through systemd, the servers' health and the health gate.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple


class Server(NamedTuple):
    name: str  # backend/server
    status: str
    check: str


def runtime(socket_path: str, command: str, timeout: float = 5.0) -> str:
    """One runtime API command; raises OSError when the socket does not answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def worker_pid(socket_path: str, attempts: int = 3) -> Optional[int]:
    """The pid of the worker answering the runtime socket, None when none answers after `attempts` tries."""
    for attempt in range(attempts):
        try:
            match = re.search(r"^Pid: (\d+)$", runtime(socket_path, "show info", timeout=3.0), re.M)
            if match:
                return int(match.group(1))
        except OSError:
            pass
        if attempt + 1 < attempts:
            time.sleep(0.3)
    return None


def servers(socket_path: str) -> List[Server]:
    """Every server of the running HAProxy (show stat)."""
    lines = runtime(socket_path, "show stat").splitlines()
    if not lines or not lines[0].startswith("# "):
        raise OSError("show stat gave no header")
    columns = {name: i for i, name in enumerate(lines[0][2:].split(","))}
    out = []
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) <= max(columns["svname"], columns["status"], columns["check_status"]):
            continue
        name = fields[columns["svname"]]
        if name in ("FRONTEND", "BACKEND"):
            continue
        out.append(Server(f"{fields[columns['pxname']]}/{name}", fields[columns["status"]], fields[columns["check_status"]]))
    return out


def healthy(server: Server) -> bool:
    """UP (or draining) after a passed check of this worker, or UP without checks."""
    if server.status == "no check":
        return True
    return server.status in ("UP", "DRAIN") and re.search(r"(L4OK|L6OK|L7OK|L7OKC)$", server.check) is not None


def healthy_names(socket_path: str) -> List[str]:
    return sorted(s.name for s in servers(socket_path) if healthy(s))


def configured_servers(config: str) -> Dict[Tuple[str, str], Tuple[str, str]]:
    """(backend, server) → (address, port) of every `server` line of a backend or listen section."""
    servers_of: Dict[Tuple[str, str], Tuple[str, str]] = {}
    section = ""
    for raw in config.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if not raw[0].isspace():
            section = words[1] if words[0] in ("backend", "listen") and len(words) > 1 else ""
        elif section and words[0] == "server" and len(words) > 2:
            address, _, port = words[2].rpartition(":") if ":" in words[2] else (words[2], "", "0")
            # No port (the client's port is kept) is port 0 in the state file; an offset (+N/-N) is not compared.
            if port.isdigit():
                servers_of[(section, words[1])] = (address, port)
    return servers_of


def save_server_state(socket_path: str, state_file: str, new_config: str) -> None:
    """The running worker's server states for the next worker (drain and maintenance survive the reload).
    Each server's last check result (srv_check_status) is set to 1, "not checked yet": the new worker reports
    a server as checked only after a check of its own, so the gate needs no fixed wait. A server whose address
    or port the new configuration changes is left out: HAProxy would otherwise restore the old address and
    port from the state file and never use the new ones (seen with 2.6 and 3.0)."""
    wanted = configured_servers(new_config)
    lines = []
    columns: Dict[str, int] = {}
    for line in runtime(socket_path, "show servers state").splitlines():
        fields = line.split(" ")
        if line.startswith("# "):
            columns = {name: i for i, name in enumerate(line[2:].split(" "))}
        elif columns and len(fields) > max(columns.values()):
            configured = wanted.get((fields[columns["be_name"]], fields[columns["srv_name"]]))
            if configured is not None and configured != (fields[columns["srv_addr"]], fields[columns["srv_port"]]):
                continue
            if fields[columns["srv_check_status"]] != "0":
                fields[columns["srv_check_status"]] = "1"
        lines.append(" ".join(fields))
    tmp = state_file + ".new"
    with open(tmp, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    os.rename(tmp, state_file)


def check_config(config: str, env_file: str, rewrites: Iterable[Tuple[str, str]], work: str) -> Tuple[bool, str]:
    """`haproxy -dW -c` on `config` with HAProxy's environment file loaded (read, never evaluated), against
    an empty server-state file, reading the staged files where `rewrites` says (path prefixes)."""
    with open(config, encoding="utf-8") as file:
        text = file.read()
    empty_state = os.path.join(work, "empty-server-state")
    with open(empty_state, "w", encoding="utf-8") as file:
        file.write("1\n")
    text = re.sub(r"(?m)^(\s*server-state-file) .*$", lambda m: f"{m.group(1)} {empty_state}", text)
    for old, new in rewrites:
        text = text.replace(old, new)
    checked = os.path.join(work, "check.cfg")
    with open(checked, "w", encoding="utf-8") as file:
        file.write(text)
    env = dict(os.environ)
    env.update(read_env_file(env_file))
    result = subprocess.run(["haproxy", "-dW", "-c", "-f", checked], env=env, capture_output=True, text=True, timeout=120)
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output


def read_env_file(path: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                name, sep, value = line.rstrip("\n").partition("=")
                if sep and name:
                    values[name] = value
    except FileNotFoundError:
        pass
    return values


def systemctl(*args: str, timeout: float = 90) -> bool:
    ok, _ = systemctl_output(*args, timeout=timeout)
    return ok


def systemctl_output(*args: str, timeout: float = 90) -> Tuple[bool, str]:
    """systemctl ARGS: whether it worked, and the last lines it printed (for the status and the journal)."""
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout)
    return result.returncode == 0, " ".join((result.stdout + result.stderr).strip().splitlines()[-3:])


def service_active(unit: str) -> bool:
    return systemctl("is-active", "--quiet", unit)


def reload(socket_path: str, state_file: str, config_file: str, wait_seconds: float = 15.0) -> Tuple[bool, str]:
    """Hands the listeners to a new worker (established connections stay on the old one until they end or
    hard-stop-after). Restart only when haproxy.service is not running at all: a runtime socket that is slow
    to answer never turns a reload into a restart (which would cut every DICOM association and HL7 link)."""
    old = worker_pid(socket_path)
    if service_active("haproxy.service"):
        if old is not None:
            try:
                with open(config_file, encoding="utf-8") as file:
                    save_server_state(socket_path, state_file, file.read())
            except OSError as error:
                return False, f"could not save the server states before the reload: {error}"
        ok, output = systemctl_output("reload", "haproxy.service")
        if not ok:
            return False, f"systemctl reload haproxy.service failed: {output}"
    else:
        systemctl("enable", "haproxy.service")
        ok, output = systemctl_output("restart", "haproxy.service")
        if not ok:
            return False, f"systemctl restart haproxy.service failed (journalctl -u haproxy): {output}"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        new = worker_pid(socket_path, attempts=1)
        if new is not None and new != old:
            return True, ""
        time.sleep(0.2)
    return False, f"no new HAProxy worker answered within {wait_seconds:.0f} s"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def gate(socket_path: str, health_url: str, before: Iterable[str], seconds: float) -> Tuple[bool, str]:
    """HAProxy answers its health URL, and every server healthy before (`before`) that is still configured
    passes a check of the new worker, within `seconds`."""
    expected = set(before)
    deadline = time.monotonic() + seconds
    waiting = ""
    while True:
        if not answers(health_url):
            waiting = f"HAProxy's {health_url}"
        else:
            try:
                pending = [f"{s.name} ({s.status}{', check ' + s.check if s.check else ''})"
                           for s in servers(socket_path) if s.name in expected and not healthy(s)]
                waiting = ", ".join(pending)
            except OSError as error:
                waiting = f"the runtime API ({error})"
        if not waiting:
            return True, ""
        if time.monotonic() >= deadline:
            return False, f"not healthy within {seconds:.0f}s: {waiting}"
        time.sleep(0.5)


def version() -> str:
    try:
        result = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=10)
        return result.stdout.splitlines()[0] if result.stdout else ""
    except (OSError, subprocess.SubprocessError):
        return ""
