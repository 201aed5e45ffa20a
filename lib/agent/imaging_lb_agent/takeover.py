"""The VIP takeover's EC2 calls, without the AWS CLI: `python3 -m imaging_lb_agent.takeover SUBCOMMAND ...`.

keepalived's notify_master script moves the floating addresses with one to three EC2 calls. Through the AWS
CLI each costs about 0.6 s of CPU before its request leaves (measured against moto on the test machine),
all of it on the failover's critical path. This module takes the same arguments as the three `aws ec2`
subcommands the script uses and sends each request with the agent's signer (aws.py): one Python start, no
botocore.

    assign-private-ip-addresses --network-interface-id ENI --private-ip-addresses IP [IP...] --allow-reassignment
    associate-address --allocation-id EIPALLOC --network-interface-id ENI [--private-ip-address IP] --allow-reassociation
    replace-route --route-table-id RTB --destination-cidr-block CIDR --network-interface-id ENI

and the AWS CLI's --region, --endpoint-url, --output, --cli-connect-timeout and --cli-read-timeout. Like the CLI
with AWS_MAX_ATTEMPTS=1 it makes one attempt: the script owns the retries and logs each one. Exit status: 0,
254 when EC2 answered with an error, 255 when it could not be reached or the arguments are wrong; the error is
on stderr in the CLI's words.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from . import aws

# subcommand -> (EC2 action, {option: (query parameter, kind)}); kind: "one" (required), "optional", "list"
# (required, one or more) or "flag".
SUBCOMMANDS: Dict[str, Tuple[str, Dict[str, Tuple[str, str]]]] = {
    "assign-private-ip-addresses": ("AssignPrivateIpAddresses", {
        "--network-interface-id": ("NetworkInterfaceId", "one"),
        "--private-ip-addresses": ("PrivateIpAddress", "list"),
        "--allow-reassignment": ("AllowReassignment", "flag"),
    }),
    "associate-address": ("AssociateAddress", {
        "--allocation-id": ("AllocationId", "one"),
        "--network-interface-id": ("NetworkInterfaceId", "one"),
        "--private-ip-address": ("PrivateIpAddress", "optional"),
        "--allow-reassociation": ("AllowReassociation", "flag"),
    }),
    "replace-route": ("ReplaceRoute", {
        "--route-table-id": ("RouteTableId", "one"),
        "--destination-cidr-block": ("DestinationCidrBlock", "one"),
        "--network-interface-id": ("NetworkInterfaceId", "one"),
    }),
}
GLOBAL_OPTIONS = ("--region", "--endpoint-url", "--output", "--cli-connect-timeout", "--cli-read-timeout")


class UsageError(Exception):
    pass


def parse(argv: Sequence[str]) -> Tuple[str, List[Tuple[str, str]], Dict[str, str]]:
    """(action, query parameters in order, global options) of one command line."""
    if not argv or argv[0] not in SUBCOMMANDS:
        raise UsageError(f"unknown subcommand {argv[0] if argv else '(none)'}; known: {', '.join(SUBCOMMANDS)}")
    action, options = SUBCOMMANDS[argv[0]]
    params: List[Tuple[str, str]] = []
    settings: Dict[str, str] = {}
    i = 1
    while i < len(argv):
        option = argv[i]
        values: List[str] = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        if option in GLOBAL_OPTIONS:
            if len(values) != 1:
                raise UsageError(f"{option} takes one value")
            settings[option] = values[0]
            continue
        if option not in options:
            raise UsageError(f"unknown option {option} for {argv[0]}")
        name, kind = options[option]
        if kind == "flag":
            if values:
                raise UsageError(f"{option} takes no value")
            params.append((name, "true"))
        elif kind in ("one", "optional"):
            if len(values) != 1:
                raise UsageError(f"{option} takes one value")
            params.append((name, values[0]))
        else:
            if not values:
                raise UsageError(f"{option} takes one or more values")
            params.extend((f"{name}.{n}", value) for n, value in enumerate(values, start=1))
    required = {name for name, kind in options.values() if kind in ("one", "list")}
    given = {name.split(".")[0] for name, _ in params}
    missing = sorted(required - given)
    if missing:
        raise UsageError(f"{argv[0]}: missing {', '.join(missing)}")
    return action, params, settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        action, params, settings = parse(args)
    except UsageError as error:
        print(f"imaging-lb takeover: {error}", file=sys.stderr)
        return 255
    if "--endpoint-url" in settings:
        os.environ["AWS_ENDPOINT_URL_EC2"] = settings["--endpoint-url"]
    timeouts = [float(settings[o]) for o in ("--cli-connect-timeout", "--cli-read-timeout") if o in settings]
    if timeouts:
        aws.TIMEOUT_SECONDS = max(timeouts)
    region = settings.get("--region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    if not region:
        print("imaging-lb takeover: no region (--region or AWS_REGION)", file=sys.stderr)
        return 255
    session = aws.Session(region)
    try:
        session.ec2_call(action, params)
    except aws.AwsError as error:
        print(f"An error occurred ({error.code}) when calling the {action} operation: {error}", file=sys.stderr)
        return 254 if error.status else 255
    finally:
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
