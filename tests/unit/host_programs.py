"""Run the shipped host programs here, under a given shell, as the controller runs them on a host:
in a session's runner (``runner.sh`` with every program as a function), requests and replies in
the framing of ``orchestrator.hostproto``, or on a channel of their own."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
from collections.abc import Mapping

from orchestrator.hostproto import framing
from orchestrator.hostproto.scripts import channel_program, runner_program
from orchestrator.transport.base import CommandResult, ScriptCall

# The shells hosts have: Debian's dash, and busybox's ash (Alpine's /bin/sh).
SHELLS = {"dash": ["dash"], "busybox": ["busybox", "sh"]}


def shell(name: str) -> list[str]:
    command = SHELLS[name]
    if shutil.which(command[0]) is None:
        raise AssertionError(f"{command[0]} is not installed (.ci/run installs it)")
    return command


Request = tuple[tuple[ScriptCall, ...], bytes]


def fetch_tool() -> str | None:
    """What the probe names as this machine's way to fetch from a bundle store."""
    return next((tool for tool in ("curl", "wget") if shutil.which(tool)), None)


def run_runner(
    shell_name: str, requests: list[Request], env: Mapping[str, str] | None = None
) -> list[CommandResult]:
    """Every request through one runner, in order; a reply each."""
    secret = framing.new_secret()
    data = framing.secret_line(secret) + b"".join(
        framing.runner_request(calls, len(stdin)) + stdin for calls, stdin in requests
    )
    done = subprocess.run(
        [*shell(shell_name), "-c", runner_program(), "runner"],
        input=data,
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    stream = io.BytesIO(done.stdout)

    async def read(size: int) -> bytes:
        return stream.read(size)

    async def replies() -> list[CommandResult]:
        reader = framing.RunnerReplies(read, secret)
        results = [await reader.next() for _ in requests]
        assert stream.read() == b"", "the runner sent more than its replies"
        return results

    return asyncio.run(replies())


def run_one(shell_name: str, *calls: ScriptCall, stdin: bytes = b"") -> CommandResult:
    return run_runner(shell_name, [(calls, stdin)])[0]


def run_channel(shell_name: str, call: ScriptCall) -> CommandResult:
    """One program on a channel of its own (a heartbeat while the runner is busy)."""
    secret = framing.new_secret()
    done = subprocess.run(
        [*shell(shell_name), "-c", channel_program(call.name), call.name, *call.args],
        input=framing.secret_line(secret),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return framing.channel_result(done.returncode, done.stdout, done.stderr, secret)
