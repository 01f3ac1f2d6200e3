"""The seam between the transport and the host protocol: the transport builds its command lines
from whatever ``SessionScript`` it is given, knowing no program; the host protocol's
``HOST_PROGRAMS`` is that script, and its requests go on the wire as they always have."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import cast

from orchestrator.hostproto import HOST_PROGRAMS, framing
from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.requests import (
    DownloadRequest,
    FinishRequest,
    HookAbort,
    HookCollect,
    HookStart,
    InstallRequest,
    LockMode,
    LockRequest,
    ProbeRequest,
)
from orchestrator.hostproto.scripts import SUPERVISE_VARIABLE, channel_program, program
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ReplyStream, ScriptCall
from orchestrator.transport.commands import channel_command, runner_command


class Stub:
    """A session script of two functions that are not the host programs."""

    def runner(self) -> str:
        return "serve"

    def standalone(self, name: str) -> tuple[str, Mapping[str, str]]:
        return f"body of {name}", {"NEEDS": "it's"} if name == "greet" else {}

    def new_secret(self) -> str:
        return "s"

    def runner_input(self, secret: str) -> bytes:
        return b"s\n"

    def channel_input(self, secret: str, calls: Sequence[ScriptCall]) -> bytes:
        return b"s\n" * len(calls)

    def request(self, calls: Sequence[ScriptCall], stdin_size: int) -> bytes:
        return b""

    def replies(self, read: Callable[[int], Awaitable[bytes]], secret: str) -> ReplyStream:
        raise NotImplementedError

    def channel_result(
        self, exit_status: int | None, stdout: bytes, stderr: bytes, secret: str
    ) -> CommandResult:
        return CommandResult(exit_status, "", "")


def _host(user: str, become: str) -> HostSpec:
    return cast(HostSpec, SimpleNamespace(user=user, become=become))


def test_the_transport_runs_what_its_script_says() -> None:
    calls = (ScriptCall("greet", ("a b",)), ScriptCall("part", ()))
    assert channel_command(_host("deploy", "sudo"), calls, Stub()) == (
        "sudo -n env NEEDS='it'\"'\"'s' sh -c 'body of greet' greet 'a b' && "
        "sudo -n sh -c 'body of part' part "
    )
    assert runner_command(_host("root", "sudo"), Stub()) == "sh -c serve runner"
    assert runner_command(_host("deploy", "none"), Stub()) == "sh -c serve runner"


def test_the_host_programs_on_a_channel_of_their_own() -> None:
    hook, env = HOST_PROGRAMS.standalone("hook")
    assert hook == channel_program("hook")
    assert env == {SUPERVISE_VARIABLE: program("supervise")}  # hook starts the supervisor
    assert HOST_PROGRAMS.standalone("lock") == (channel_program("lock"), {})
    assert program("frame") in HOST_PROGRAMS.runner()


def test_the_requests_go_on_the_wire_as_before() -> None:
    """Pinned lines: what the runner reads for each request (the programs' usage lines)."""
    probe = ProbeRequest("/r x", "g", "d-1", 1_048_577).call()
    acquire = LockRequest(
        LockMode.ACQUIRE, "/r x", "g", "d-1", 120, LockHolder(holder="me", pid=1)
    ).call()
    assert framing.runner_request((probe, acquire), 0) == (
        b"0 probe '/r x' g d-1 1048577 && "
        b"lock acquire '/r x' g d-1 120 holder=me\"$newline\"pid=1\n"
    )
    start = HookStart(
        "/b",
        "/r",
        "g",
        "d-1",
        "AfterInstall",
        "/a/s.sh",
        "s.sh",
        300,
        None,
        "/a",
        1.5,
        (("APPLICATION_NAME", "my app"),),
    ).call()
    assert framing.runner_request((start,), 0) == (
        b"0 hook start /b 65537 /r g d-1 AfterInstall /a/s.sh s.sh 300 '' /a 1.5 "
        b"'APPLICATION_NAME=my app'\n"
    )
    download = DownloadRequest("/r", "g", "d-2", "ab", "/r/g/d-1/bundle.tar", 1, "/r/g/d-0")
    fresh = DownloadRequest("/r", "g", "d-2", "ab", None, 5, None)
    assert framing.runner_request((download.call(),), 0) == (
        b"0 download /r g d-2 ab /r/g/d-1/bundle.tar 1 /r/g/d-0\n"
    )
    assert framing.runner_request((fresh.call(),), 4096) == b"4096 download /r g d-2 ab '' 5 ''\n"
    install = InstallRequest("/r", "g", "d-2").call()
    assert framing.runner_request((install,), 12) == b"12 install /r g d-2\n"
    collects = [HookCollect("/b", 12.5).call(), HookCollect("/b").call()]
    assert [framing.runner_request((c,), 0) for c in collects] == [
        b"0 hook collect /b 65537 12.5\n",
        b"0 hook collect /b 65537\n",
    ]
    abort = HookAbort("/b", 1e6).call()
    finish = FinishRequest("/r", "g", "d-1", None, "ab").call()
    assert [shlex.join([c.name, *c.args]) for c in (abort, finish)] == [
        "hook abort /b 1000000",
        "finish /r g d-1 - ab",
    ]
