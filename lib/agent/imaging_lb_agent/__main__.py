"""imaging-lb-agent: the node agent (started by /usr/local/sbin/imaging-lb-agent, the launcher).

  imaging-lb-agent                  run as the service: a cycle every POLL_SECONDS (5 s)
  imaging-lb-agent --once [--boot]  one cycle (--boot: the bootstrap's first apply; waits for a run in
                                    progress and fails unless the desired version is applied)
  imaging-lb-agent status           this node's last status (JSON)
  imaging-lb-agent retry            apply the desired version again, though it failed
  imaging-lb-agent release          a held MASTER applies without waiting for its peer
  imaging-lb-agent refresh          fetch the secrets now (a rotated certificate)
  imaging-lb-agent --self-test      checks that this agent's files load (run on a new bundle's agent first)
"""
from __future__ import annotations

import os
import sys


def main(argv: list) -> int:
    root = os.environ.get("IMAGING_LB_ROOT", "")
    if argv[:1] == ["--self-test"]:
        from . import agent, aws, contract, files, haproxy, metrics, policy, store  # noqa: F401  (every module loads)
        policy.decide(policy.Situation(0, "a" * 16, "b" * 16, None, "single", "single", None, None, None, 600))
        return 0
    from .agent import Agent, run_daemon, run_once
    from .contract import CONTRACT, PATHS
    from . import files

    state_dir = root + PATHS["stateDir"]
    if argv[:1] == ["status"]:
        text = files.read_text(os.path.join(state_dir, "status.json"))
        print(text.rstrip() if text else "no status yet")
        return 0
    if argv[:1] and argv[0] in CONTRACT["commands"]:
        inbox = os.path.join(state_dir, "inbox")
        os.makedirs(inbox, exist_ok=True)
        files.write_atomic(os.path.join(inbox, argv[0]), b"")
        print(f"imaging-lb-agent: {argv[0]} queued; the agent acts on it within a poll (journalctl -u imaging-lb-agent)")
        return 0
    agent = Agent(root)
    if argv[:1] == ["--once"]:
        return run_once(agent, boot="--boot" in argv)
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    return run_daemon(agent)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
