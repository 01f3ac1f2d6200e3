"""The transport interface the engine talks to: connect to a host, run commands, send files.

``transport.ssh`` implements it over asyncssh; unit tests of the engine use a scripted fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.models.hosts import HostSpec


@dataclass(frozen=True)
class CommandResult:
    exit_status: int | None  # None when the command died by a signal
    stdout: str  # what the programs printed outside any frame (a plain command's whole stdout)
    stderr: str
    # The programs' framed reply sections, (name, bytes) in order (``remote/wire.py``).
    frames: tuple[tuple[str, bytes], ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class ProgramCall:
    """One of the shipped host programs (``transport/remote/<program>.sh``) with its arguments,
    run as root when the host's ``become`` says so."""

    program: str
    args: tuple[str, ...] = ()


class HostSession(Protocol):
    """One open connection to one host; every step is a channel on it."""

    @property
    def host(self) -> HostSpec: ...

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``command`` on a channel of its own; ``stdin_file`` is streamed, never read whole."""
        ...

    async def call(
        self,
        *calls: ProgramCall,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
        step: bool = True,
    ) -> CommandResult:
        """Run host programs one after another, each only if the one before succeeded (a probe
        that fails the host takes no lock), their outputs concatenated. A ``step`` of the
        deployment waits for the session's runner; anything else (a heartbeat, an abort) gets a
        channel of its own when the runner is busy."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def connect(self, host: HostSpec) -> HostSession:
        """Open a session; raise a ``ConnectError`` subclass when that is impossible."""
        ...

    async def close(self) -> None:
        """Close what the transport shares between sessions (bastion connections)."""
        ...
