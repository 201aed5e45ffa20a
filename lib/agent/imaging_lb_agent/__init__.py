"""The imaging-lb node agent. See agent.py; the launcher is lib/agent/imaging-lb-agent-launcher.sh."""
