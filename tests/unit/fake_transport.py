"""A scripted in-memory transport: each host answers the shipped programs from a script, through
the host protocol's types (``orchestrator.hostproto``): requests are read back with
``parse_call``, replies are rendered in the bytes a host would send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import assert_never

from orchestrator.errors import Unreachable
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import Frames, HookResult, LockReply, LockState, Probe
from orchestrator.hostproto.requests import (
    DownloadRequest,
    FinishRequest,
    HookAbort,
    HookCollect,
    HookStart,
    HostRequest,
    InstallRequest,
    LockMode,
    LockRequest,
    ProbeRequest,
    parse_call,
)
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ScriptCall

SECRET = framing.new_secret()
OTHER = "d-OTHER"  # the deployment that holds the locked hosts' locks


def _reply(*frames: Frames, output: str = "") -> CommandResult:
    """What a channel would carry: ``output``, then each reply's sections."""
    data = framing.encode(SECRET, [frame for part in frames for frame in part], output.encode())
    return framing.channel_result(0, data, b"", SECRET)


@dataclass
class FakeFleet:
    unreachable: set[str] = field(default_factory=set)
    failing_hooks: set[tuple[str, str]] = field(default_factory=set)  # (host, event)
    locked: set[str] = field(default_factory=set)  # hosts whose group lock another deployment holds
    unlockable: set[str] = field(default_factory=set)  # hosts whose lock cannot be written
    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (host, program, args)
    # What a host answers to a lock heartbeat, and to a lock release.
    heartbeat: LockReply = field(default_factory=lambda: LockReply(LockState.REFRESHED))
    release: LockReply = field(default_factory=lambda: LockReply(LockState.RELEASED))
    hooks_wait_for: asyncio.Event | None = None  # hooks finish only once it is set
    lost_locks: dict[str, str] = field(default_factory=dict)  # host: who took its lock over
    hung_heartbeats: set[str] = field(default_factory=set)  # hosts whose heartbeat never answers
    on_call: Callable[[str, str, list[str]], None] | None = None  # told of every call
    started: dict[tuple[str, str], HookStart] = field(default_factory=dict)  # (host, base)
    aborted: list[tuple[str, str]] = field(default_factory=list)  # (host, hook base)


class FakeSession:
    def __init__(self, host: HostSpec, fleet: FakeFleet) -> None:
        self._host = host
        self.fleet = fleet

    @property
    def host(self) -> HostSpec:
        return self._host

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        return CommandResult(0, "", "")

    async def call(
        self,
        *calls: ScriptCall,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
        ordered: bool = True,
    ) -> CommandResult:
        """Each call answered in turn, its reply parsed from the call as a host would."""
        frames: list[Frames] = []
        output = ""
        for call in calls:
            self.fleet.calls.append((self._host.name, call.name, list(call.args)))
            if self.fleet.on_call is not None:
                self.fleet.on_call(self._host.name, call.name, list(call.args))
            answer = await self._answer(parse_call(call))
            if isinstance(answer, str):
                output += answer
            else:
                frames.append(answer)
        return _reply(*frames, output=output)

    async def _answer(self, request: HostRequest) -> Frames | str:
        """What the host replies to ``request``: its frames, or the step's output."""
        name = self._host.name
        match request:
            case ProbeRequest():
                return Probe().frames()
            case LockRequest(mode=LockMode.ACQUIRE):
                return self._acquire(request).frames()
            case LockRequest(mode=LockMode.HEARTBEAT):
                if name in self.fleet.hung_heartbeats:
                    await asyncio.Future()  # until cancelled
                thief = self.fleet.lost_locks.get(name)
                if thief is not None:
                    return LockReply.of(LockState.LOST, deployment=thief).frames()
                return self.fleet.heartbeat.frames()
            case LockRequest():
                return self.fleet.release.frames()
            case HookStart():
                self.fleet.started[(name, request.base)] = request
                return await self._hook(request)
            case HookCollect():
                started = self.fleet.started.get((name, request.base))
                if started is None:
                    return HookResult(
                        -1, LifecycleErrorCode.UNKNOWN_ERROR, "", "", "", "", started=False
                    ).frames()
                return await self._hook(started)
            case HookAbort():
                self.fleet.aborted.append((name, request.base))
                return ""
            case DownloadRequest() | InstallRequest() | FinishRequest():
                return f"{request.PROGRAM.value} done\n"
            case _:
                assert_never(request)

    def _acquire(self, request: LockRequest) -> LockReply:
        name = self._host.name
        if name in self.fleet.unlockable:
            return LockReply.of(LockState.FAILED, error="No space left on device")
        if name in self.fleet.locked:
            if request.finished == OTHER:  # a deployment the controller knows has ended
                return LockReply.of(LockState.TOOK_OVER, deployment=OTHER)
            return LockReply.of(LockState.HELD, deployment=OTHER)
        return LockReply(LockState.ACQUIRED)

    async def _hook(self, request: HookStart) -> Frames:
        if self.fleet.hooks_wait_for is not None:
            await self.fleet.hooks_wait_for.wait()
        if (self._host.name, request.event) in self.fleet.failing_hooks:
            failed = HookResult(
                1, LifecycleErrorCode.SCRIPT_FAILED, "failed with exit code 1", "", "", "boom\n"
            )
            return failed.frames()
        return HookResult(0, LifecycleErrorCode.SUCCESS, "ok", "", "fine\n", "").frames()

    async def close(self) -> None:
        return None


class FakeTransport:
    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet

    async def connect(self, host: HostSpec) -> FakeSession:
        if host.name in self.fleet.unreachable:
            raise Unreachable(host.name, "connection refused")
        return FakeSession(host, self.fleet)

    async def close(self) -> None:
        return None
