"""The transport interface the engine talks to: connect to a host, run commands, send files.

``transport.ssh`` implements it over asyncssh; unit tests of the engine use a scripted fake. What
runs on the host is not the transport's business: a session runs the functions of a
``SessionScript`` it is given (``orchestrator.hostproto`` is the one there is) and hands back
their framed replies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pydantic: history, status and logs import no models (test_cli)
    from orchestrator.models.hosts import HostSpec


@dataclass(frozen=True)
class CommandResult:
    exit_status: int | None  # None when the command died by a signal
    stdout: str  # what the programs printed outside any frame (a plain command's whole stdout)
    stderr: str
    # The framed reply sections, (name, bytes) in order (``hostproto/framing.py``).
    frames: tuple[tuple[str, bytes], ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class ScriptCall:
    """A function of the session's script with its arguments: what ``HostSession.call`` runs.
    The transport does not know what it does."""

    name: str
    args: tuple[str, ...] = ()


def chained(commands: Sequence[str]) -> str:
    """sh commands run one after another, each only if the one before succeeded: how a
    session runs the calls of one ``HostSession.call``, on its runner or on a channel."""
    return " && ".join(commands)


class ReplyOverflow(Exception):
    """A reply grew past the limit of what a reply may hold (the transport names the host)."""


class ReplyStream(Protocol):
    async def next(self) -> CommandResult:
        """The next reply off the runner's stream; ``EOFError`` when the stream ends within it,
        ``ReplyOverflow`` when it outgrows the limit (the stream is then unusable)."""
        ...


class SessionScript(Protocol):
    """What a session runs on its host, as the transport carries it without knowing what it
    does: a runner that serves calls one after another on one channel, or a call on a channel of
    its own; each is told a secret first, and frames its reply with it."""

    def runner(self) -> str:
        """The runner's text, run as ``sh -c TEXT runner``; its requests are ``request``."""
        ...

    def standalone(self, name: str) -> tuple[str, Mapping[str, str]]:
        """The text that runs the function ``name`` on a channel of its own, and the
        environment it needs there."""
        ...

    def new_secret(self) -> str: ...

    def runner_input(self, secret: str) -> bytes:
        """What the runner reads first from its stdin."""
        ...

    def channel_input(self, secret: str, calls: Sequence[ScriptCall]) -> bytes:
        """What ``calls`` on a channel of their own read from its stdin before the stdin they
        were given."""
        ...

    def request(self, calls: Sequence[ScriptCall], stdin_size: int) -> bytes:
        """The runner's request for ``calls``, followed by ``stdin_size`` bytes of stdin."""
        ...

    def replies(self, read: Callable[[int], Awaitable[bytes]], secret: str) -> ReplyStream:
        """The runner's replies, read off its stdout with ``read``."""
        ...

    def channel_result(
        self, exit_status: int | None, stdout: bytes, stderr: bytes, secret: str
    ) -> CommandResult:
        """What calls on a channel of their own replied."""
        ...


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
        *calls: ScriptCall,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
        ordered: bool = True,
    ) -> CommandResult:
        """Run the session script's functions one after another, each only if the one before
        succeeded (``chained``), their outputs concatenated. ``ordered`` calls wait their turn
        on the session's runner, after the calls before them; the others get a channel of their
        own when the runner is busy (but for one streaming a ``stdin_file``, which waits too)."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def connect(self, host: HostSpec) -> HostSession:
        """Open a session; raise a ``ConnectError`` subclass when that is impossible."""
        ...

    async def close(self) -> None:
        """Close what the transport shares between sessions (bastion connections)."""
        ...
