"""A session's host-side runner, as the controller drives it: one request at a time written to the
runner's stdin (a file streamed in chunks, under the transport's upload cap), its framed reply read
off its stdout; the ``SessionScript`` says how both look. The channel it runs on is given (an
asyncssh process, opened by ``ssh.py``), with how that channel's errors become ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from orchestrator.errors import ReplyTooLarge, Unreachable
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ReplyOverflow, ScriptCall, SessionScript

RUNNER_CHUNK = 32 * 1024  # one SSH packet: a slow host holds at most this much in memory


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class Reader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class Channel(Protocol):
    """The runner's channel: its stdin, stdout and stderr."""

    @property
    def stdin(self) -> Writer: ...

    @property
    def stdout(self) -> Reader: ...

    @property
    def stderr(self) -> Reader: ...

    def close(self) -> None: ...


# The channel's errors as ``orchestrator.errors``, but for those passed through as they are.
ErrorMapping = Callable[[tuple[type[BaseException], ...]], AbstractContextManager[None]]


class Runner:
    """The host-side runner on one channel: a request at a time, its reply framed."""

    def __init__(
        self,
        host: HostSpec,
        channel: Channel,
        secret: str,
        script: SessionScript,
        errors: ErrorMapping,
    ) -> None:
        self._host = host
        self._channel = channel
        self._script = script
        self._errors = errors
        # On its stdin, never its command line: `ps` on the host would show it to anyone.
        channel.stdin.write(script.runner_input(secret))
        self._replies = script.replies(channel.stdout.read, secret)

    async def run(
        self,
        calls: tuple[ScriptCall, ...],
        stdin: bytes | None,
        stdin_file: Path | None,
        uploads: asyncio.Semaphore,
    ) -> CommandResult:
        try:
            return await self._request(calls, stdin, stdin_file, uploads)
        except (EOFError, ConnectionError) as exc:
            raise Unreachable(self._host.name, await self._ended()) from exc
        except ReplyOverflow as exc:
            programs = ", ".join(call.name for call in calls)
            message = f"{programs}: the host sent {exc}, more than any reply of ours: not read"
            raise ReplyTooLarge(self._host.name, message) from exc

    async def _request(
        self,
        calls: tuple[ScriptCall, ...],
        stdin: bytes | None,
        stdin_file: Path | None,
        uploads: asyncio.Semaphore,
    ) -> CommandResult:
        size = stdin_file.stat().st_size if stdin_file is not None else len(stdin or b"")
        writer = self._channel.stdin
        with self._errors((EOFError, ConnectionError)):
            writer.write(self._script.request(calls, size) + (stdin or b""))
            if stdin_file is not None:
                async with uploads:  # held while sending, not while the host unpacks
                    with stdin_file.open("rb") as handle:
                        while chunk := handle.read(RUNNER_CHUNK):
                            writer.write(chunk)
                            await writer.drain()
            await writer.drain()
            return await self._replies.next()

    async def _ended(self) -> str:
        """Why the runner stopped answering: its own stderr when it has something to say."""
        with contextlib.suppress(Exception):
            said = await asyncio.wait_for(self._channel.stderr.read(), timeout=1)
            if said.strip():
                text = said.decode("utf-8", errors="replace")
                return f"the host-side runner ended: {text.strip()[-500:]}"
        return "the connection closed while a step ran"

    def close(self) -> None:
        self._channel.close()
