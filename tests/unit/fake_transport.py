"""A scripted in-memory transport: each host answers the shipped programs from a script, in
their wire format (the bytes a host would send, read by ``transport/remote/wire``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import Unreachable
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ProgramCall
from orchestrator.transport.remote import wire

SECRET = wire.new_secret()


def _reply(output: str = "", **sections: str) -> CommandResult:
    """What a channel would carry: ``output``, then each section after ``frame NAME``."""
    data = output.encode() + b"".join(
        wire.marker(SECRET, name.replace("_", "-")) + body.encode()
        for name, body in sections.items()
    )
    return wire.channel_result(0, data, b"", SECRET)


@dataclass
class FakeFleet:
    unreachable: set[str] = field(default_factory=set)
    failing_hooks: set[tuple[str, str]] = field(default_factory=set)  # (host, event)
    locked: set[str] = field(default_factory=set)  # hosts whose group lock another deployment holds
    unlockable: set[str] = field(default_factory=set)  # hosts whose lock cannot be written
    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (host, program, args)
    heartbeat: str = "lock=refreshed\n"  # what a host answers to a lock heartbeat
    release: str = "lock=released\n"  # what a host answers to a lock release
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
        *calls: ProgramCall,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
        step: bool = True,
    ) -> CommandResult:
        for call in calls:
            self.fleet.calls.append((self._host.name, call.program, list(call.args)))
            if self.fleet.on_call is not None:
                self.fleet.on_call(self._host.name, call.program, list(call.args))
        program, args = calls[0].program, calls[0].args
        if program == "probe":
            held = self._host.name in self.fleet.locked
            lock = "lock=held\ndeployment=d-OTHER\n" if held else "lock=acquired\n"
            if self._host.name in self.fleet.unlockable:
                lock = "lock=failed\nerror=No space left on device\n"
            return _reply(probe="last_successful=\n", lock=lock)
        if program == "lock" and args[0] == "heartbeat":
            if self._host.name in self.fleet.hung_heartbeats:
                await asyncio.Future()  # until cancelled
            thief = self.fleet.lost_locks.get(self._host.name)
            if thief is not None:
                return _reply(lock="lock=lost\n", lock_holder=f"deployment={thief}\n")
            return _reply(lock=self.fleet.heartbeat)
        if program == "lock":
            return _reply(lock=self.fleet.release)
        if program == "hook" and self.fleet.hooks_wait_for is not None:
            await self.fleet.hooks_wait_for.wait()
        if program == "hook":
            event = args[6]
            if (self._host.name, event) in self.fleet.failing_hooks:
                return _reply(
                    hook="status=1 ScriptFailed\nmessage=failed with exit code 1\nwarning=\n",
                    script_stdout="",
                    script_stderr="boom\n",
                )
            return _reply(
                hook="status=0 Success\nmessage=ok\nwarning=\n",
                script_stdout="fine\n",
                script_stderr="",
            )
        return CommandResult(0, f"{program} done\n", "")

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
