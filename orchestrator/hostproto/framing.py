"""The host programs' framing, controller side: how a request reaches the session's runner, and how
a reply is cut into sections (the sh side is ``programs/frame.sh`` and ``programs/runner.sh``).

A reply is bytes cut into sections by marker lines that hold a secret of the session's::

    reply   = output *( marker section )        output: what comes before the first marker
    marker  = "\\n" SECRET " " HEADER "\\n"       HEADER: a section's name ("probe", "lock", ...)

Programs start a section with ``frame NAME`` (``frame.sh``). A reply of the session's runner ends
with the marker ``exit STATUS``; the command's stderr, when there is any, is the section
``stderr`` before it. A program on a channel of its own ends with the channel.

Why nothing a host holds can be read as structure: the secret is 16 random bytes of the
controller's per runner or channel, sent as the first line of the program's stdin. It is never on
a command line (``ps`` shows those to every user, a hook's low-privilege ``runas`` user too) nor
in an environment; programs print what the host holds (files, a hook's output) only inside a
section, and that cannot hold the secret, so it can neither end its section nor start another.

Why a secret rather than lengths: a length in sh costs a ``wc -c``, and the stdout of every step
in a file and a ``cat``: measured, 1000 runner requests of a program printing two lines took 2.03 s
with dash (1.49 s with busybox sh) that way against 0.17 s (0.18 s) with the secret, which costs
no fork: about 2 ms of host CPU per step, 10 steps a host, on the cores the controller shares
with 100 hosts in ``bench/rollout.py``.

What a section holds, for each program, is ``requests.py`` and ``replies.py``'s business.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Awaitable, Callable, Sequence

from orchestrator.transport.base import CommandResult, ReplyOverflow, ScriptCall, chained

SECRET_BYTES = 16
READ_CHUNK = 256 * 1024
# The most a runner's reply may hold: the biggest of ours is a probe with a previous appspec of
# 1 MiB, or a hook's two tails of 64 KiB. A host that sends more (tampered with, or a command's
# runaway stderr) fails its step instead of filling the controller's memory, one such host at a
# time.
MAX_REPLY_BYTES = 16 * 1024 * 1024

STDERR = "stderr"  # the runner's section of a command's stderr
EXIT = "exit"  # the runner's last marker of a reply: "exit STATUS"
_EXIT_HEADER = f"{EXIT} ".encode()


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def secret_line(secret: str) -> bytes:
    """What a runner or a channel's program reads first from its stdin (``frame.sh``)."""
    return f"{secret}\n".encode()


def channel_input(secret: str, calls: Sequence[ScriptCall]) -> bytes:
    """What calls on a channel of their own read first: each program reads the secret (they
    share the channel's stdin, in order)."""
    return secret_line(secret) * len(calls)


def marker(secret: str, header: str) -> bytes:
    """The line ``frame HEADER`` prints (tests and the fake transport speak with it)."""
    return f"\n{secret} {header}\n".encode()


def encode(secret: str, frames: Sequence[tuple[str, bytes]], output: bytes = b"") -> bytes:
    """What a host sends for ``frames`` after ``output`` (what a fake host replies)."""
    return output + b"".join(marker(secret, name) + body for name, body in frames)


def _one_line(value: str) -> str:
    """``value`` quoted for sh on one line: its newlines become the runner's ``$newline``."""
    return '"$newline"'.join(shlex.quote(part) for part in value.split("\n"))


def runner_request(calls: Sequence[ScriptCall], stdin_size: int) -> bytes:
    """The runner's request for ``calls``: one line, then ``stdin_size`` bytes of stdin follow."""
    # Chained: a program that fails (the probe, for a host that lacks a tool) stops the rest
    # (the lock is not taken).
    line = chained(
        [" ".join([call.name, *(_one_line(arg) for arg in call.args)]) for call in calls]
    )
    return f"{stdin_size} {line}\n".encode()


def split_frames(data: bytes, secret: str) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """(output before the first marker, (header, section) pairs in order)."""
    output, *parts = data.split(b"\n" + secret.encode() + b" ")
    sections = []
    for part in parts:
        header, _, body = part.partition(b"\n")
        sections.append((header.decode("ascii", errors="replace"), body))
    return output, tuple(sections)


def channel_result(
    exit_status: int | None, stdout: bytes, stderr: bytes, secret: str
) -> CommandResult:
    """What a program on a channel of its own replied."""
    output, frames = split_frames(stdout, secret)
    return CommandResult(exit_status, text(output), text(stderr), frames)


class RunnerReplies:
    """The runner's replies, read one after another off its stdout, up to ``limit`` bytes each
    (not asyncssh's ``readuntil``, which gives up at 2 MiB)."""

    def __init__(
        self,
        read: Callable[[int], Awaitable[bytes]],
        secret: str,
        limit: int = MAX_REPLY_BYTES,
    ) -> None:
        self._read = read
        self._secret = secret
        self._marker = b"\n" + secret.encode() + b" "
        self._buffer = bytearray()
        self._limit = limit

    async def next(self) -> CommandResult:
        """The next reply; ``EOFError`` when the stream ends before it does, ``ReplyOverflow``
        when it outgrows the limit (the stream is then unusable)."""
        buffer, size = self._buffer, len(self._marker)
        start = 0
        while True:
            found = buffer.find(self._marker, start)
            if found < 0:
                start = max(start, len(buffer) - size + 1)
            else:
                end = buffer.find(b"\n", found + size)
                if end >= 0:
                    header = bytes(buffer[found + size : end])
                    if header.startswith(_EXIT_HEADER):
                        return self._reply(found, end, header)
                    start = end
                    continue
                start = found
            if len(buffer) > self._limit:
                raise ReplyOverflow(f"a reply of more than {self._limit // 1024 // 1024} MiB")
            chunk = await self._read(READ_CHUNK)
            if not chunk:
                raise EOFError("the runner's stream ended within a reply")
            buffer += chunk

    def _reply(self, found: int, end: int, header: bytes) -> CommandResult:
        output, frames = split_frames(bytes(self._buffer[:found]), self._secret)
        del self._buffer[: end + 1]
        status = header.split()[1]
        stderr = b"".join(body for name, body in frames if name == STDERR)
        frames = tuple(frame for frame in frames if frame[0] != STDERR)
        exit_status = int(status) if status.isdigit() else None
        return CommandResult(exit_status, text(output), text(stderr), frames)


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
