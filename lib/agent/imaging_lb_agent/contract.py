"""The node contract (contract.json beside this file, rendered from lib/contract/node-contract.ts) and the
checks every input from the configuration store passes before it is used: bundle paths and modes, the
settings of bundle.env, the lines of the secrets list. Nothing read from S3 is ever evaluated by a shell.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Mapping, NamedTuple, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "contract.json"), encoding="utf-8") as _file:
    CONTRACT = json.load(_file)

KNOWN_CONTRACT_VERSION = 1
if CONTRACT.get("contractVersion") != KNOWN_CONTRACT_VERSION:
    raise SystemExit(f"contract.json version {CONTRACT.get('contractVersion')!r} is not {KNOWN_CONTRACT_VERSION}")

PATHS: Mapping[str, str] = CONTRACT["paths"]
DEFAULTS: Mapping[str, int] = CONTRACT["defaults"]


def matches(pattern: str, value: str) -> bool:
    """Whether all of `value` matches `pattern` (a contract pattern, anchored with ^ and $)."""
    return re.fullmatch(pattern, value) is not None


class ContractError(Exception):
    """Input that breaks the contract: refused, never retried as it is."""


def fill(template: str, **values: str) -> str:
    def value(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"{template}: no value for {{{name}}}")
        return values[name]
    return re.sub(r"\{([A-Za-z0-9]+)\}", value, template)


def key(name: str, **values: str) -> str:
    """The S3 key `name` of the contract (manifest, signature, file, status, command)."""
    return fill(CONTRACT["keys"][name], **values)


def bundle_file_kind(path: str, mode: str) -> str:
    """The kind of bundle file `path` is, when the contract allows that path with exactly `mode`."""
    if "/../" in path + "/" or "/./" in path + "/" or "//" in path:
        raise ContractError(f"bundle path {path!r} is not canonical")
    for entry in CONTRACT["bundleFiles"]:
        if matches(entry["pattern"], path):
            if mode != entry["mode"]:
                raise ContractError(f"bundle file {path} must have mode {entry['mode']}, the manifest says {mode!r}")
            return entry["kind"]
    raise ContractError(f"bundle path {path!r} is not one a bundle may carry (haproxy, keepalived, agent and error-page files only)")


def parse_settings(text: str, allowed: Mapping[str, str], where: str) -> Dict[str, str]:
    """KEY=VALUE lines (comments and blank lines ignored). Every key must be one of `allowed` and every value
    must match its pattern; anything else is refused as a whole, naming every bad line."""
    settings: Dict[str, str] = {}
    problems: List[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            problems.append(f"line {number}: not KEY=VALUE")
        elif name not in allowed:
            problems.append(f"line {number}: unknown setting {name!r}")
        elif not matches(allowed[name], value):
            problems.append(f"line {number}: {name}={value!r} does not match {allowed[name]}")
        elif name in settings:
            problems.append(f"line {number}: {name} given twice")
        else:
            settings[name] = value
    if problems:
        raise ContractError(f"{where}: " + "; ".join(problems))
    return settings


AGENT_ENV_KEYS: Mapping[str, str] = CONTRACT["agentEnv"]


def parse_bundle_env(text: str) -> Dict[str, str]:
    return parse_settings(text, CONTRACT["bundleEnv"], "bundle.env")


def parse_agent_env(text: str) -> Dict[str, str]:
    return parse_settings(text, AGENT_ENV_KEYS, "agent.env")


class SecretEntry(NamedTuple):
    kind: str  # "pem" or "env"
    arn: str
    target: str  # the PEM's path, or the environment variable's name


def parse_secrets_list(text: str) -> List[SecretEntry]:
    """`pem <arn> <path>` and `env <NAME> <arn>` lines; a PEM may only land in the certificate folder."""
    rules = CONTRACT["secretsList"]
    entries: List[SecretEntry] = []
    problems: List[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) == 3 and fields[0] == "pem":
            _, arn, path = fields
            if not matches(rules["arn"], arn):
                problems.append(f"line {number}: {arn!r} is not a Secrets Manager ARN")
            elif not matches(rules["pemPath"], path):
                problems.append(f"line {number}: PEM path {path!r} is not in {PATHS['certDir']}/")
            else:
                entries.append(SecretEntry("pem", arn, path))
        elif len(fields) == 3 and fields[0] == "env":
            _, name, arn = fields
            if not matches(rules["envName"], name):
                problems.append(f"line {number}: {name!r} is not an IMAGING_LB_* variable name")
            elif not matches(rules["arn"], arn):
                problems.append(f"line {number}: {arn!r} is not a Secrets Manager ARN")
            else:
                entries.append(SecretEntry("env", arn, name))
        else:
            problems.append(f"line {number}: expected 'pem <arn> <path>' or 'env <NAME> <arn>'")
    if problems:
        raise ContractError("secrets.list: " + "; ".join(problems))
    return entries


def env_value_ok(value: str) -> bool:
    return matches(CONTRACT["secretsList"]["envValue"], value)


def setting(settings: Mapping[str, str], name: str, default: Optional[int] = None) -> int:
    """An integer setting of bundle.env, or `default`."""
    value = settings.get(name)
    if value is None or value == "":
        if default is None:
            raise ContractError(f"bundle.env has no {name}")
        return default
    return int(value)
