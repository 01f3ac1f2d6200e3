"""A scripted in-memory transport: each host answers the shipped programs from a script, through
the host protocol's types (``orchestrator.hostproto``): requests are read back with
``parse_call``, replies are rendered in the bytes a host would send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import Unreachable
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import Frames, HookCode, HookResult, LockReply, LockState, Probe
from orchestrator.hostproto.requests import (
    HookStart,
    LockMode,
    LockRequest,
    ProbeRequest,
    parse_call,
)
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ScriptCall

SECRET = framing.new_secret()


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
        step: bool = True,
    ) -> CommandResult:
        for call in calls:
            self.fleet.calls.append((self._host.name, call.name, list(call.args)))
            if self.fleet.on_call is not None:
                self.fleet.on_call(self._host.name, call.name, list(call.args))
        request = parse_call(calls[0])
        name = self._host.name
        if isinstance(request, ProbeRequest):
            lock = LockReply(LockState.ACQUIRED)
            if name in self.fleet.locked:
                lock = LockReply.of(LockState.HELD, deployment="d-OTHER")
            if name in self.fleet.unlockable:
                lock = LockReply.of(LockState.FAILED, error="No space left on device")
            return _reply(Probe().frames(), lock.frames())
        if isinstance(request, LockRequest) and request.mode == LockMode.HEARTBEAT:
            if name in self.fleet.hung_heartbeats:
                await asyncio.Future()  # until cancelled
            thief = self.fleet.lost_locks.get(name)
            if thief is not None:
                return _reply(LockReply.of(LockState.LOST, deployment=thief).frames())
            return _reply(self.fleet.heartbeat.frames())
        if isinstance(request, LockRequest):
            return _reply(self.fleet.release.frames())
        if isinstance(request, HookStart):
            return await self._hook(request)
        return CommandResult(0, f"{calls[0].name} done\n", "")

    async def _hook(self, request: HookStart) -> CommandResult:
        if self.fleet.hooks_wait_for is not None:
            await self.fleet.hooks_wait_for.wait()
        if (self._host.name, request.event) in self.fleet.failing_hooks:
            failed = HookResult(
                1, HookCode.SCRIPT_FAILED, "failed with exit code 1", "", "", "boom\n"
            )
            return _reply(failed.frames())
        return _reply(HookResult(0, HookCode.SUCCESS, "ok", "", "fine\n", "").frames())

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
