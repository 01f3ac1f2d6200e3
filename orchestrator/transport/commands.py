"""The command lines an SSH session sends its host, as root when the host's ``become`` says so:
the session script's runner, and calls on a channel of their own. What the script is, the
``SessionScript`` the transport was given says."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import ScriptCall, SessionScript, chained


def become(host: HostSpec) -> str:
    return "sudo -n " if host.user != "root" and host.become == "sudo" else ""


def runner_command(host: HostSpec, script: SessionScript) -> str:
    """``[sudo -n] sh -c '<runner>' runner``: the runner travels inline, once per session."""
    return f"{become(host)}sh -c {shlex.quote(script.runner())} runner"


def channel_command(host: HostSpec, calls: Sequence[ScriptCall], script: SessionScript) -> str:
    """``[sudo -n] [env K=V...] sh -c '<text>' NAME ARGS && ...``: each call travels inline, as
    ``script`` runs it on a channel of its own, chained (``chained``); what each reads from
    stdin first is ``script.channel_input``."""
    commands = []
    for call in calls:
        body, env = script.standalone(call.name)
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        prefix = f"env {assignments} " if assignments else ""
        quoted = " ".join(shlex.quote(arg) for arg in call.args)
        text = shlex.quote(body)
        commands.append(f"{become(host)}{prefix}sh -c {text} {call.name} {quoted}")
    return chained(commands)
