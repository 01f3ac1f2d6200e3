"""The host programs' wire format, controller side: the one module that formats their requests and
reads their replies (the sh side is ``frame.sh`` and ``runner.sh``).

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

The replies of the programs (probe, lock, hook) are parsed here into a dataclass each; issue #16
grows this module into the typed host protocol (StrEnum states, a dataclass per request).
"""

from __future__ import annotations

import math
import secrets
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from orchestrator.transport.base import CommandResult, ProgramCall

SECRET_BYTES = 16
# What a host sends of each of a hook script's stdout and stderr: their last 64 KiB. The whole
# output stays in the deployment's logs/scripts.log on the host.
HOOK_TAIL_BYTES = 64 * 1024
READ_CHUNK = 256 * 1024
# The most a runner's reply may hold: the biggest of ours is a probe with a previous appspec of
# 1 MiB, or a hook's two tails of 64 KiB. A host that sends more (tampered with, or a command's
# runaway stderr) fails its step instead of filling the controller's memory, one such host at a
# time.
MAX_REPLY_BYTES = 16 * 1024 * 1024

MISSING_APPSPEC = "__missing__"  # Probe.old_appspec when the last install's appspec is gone
NOT_STARTED = "NotStarted"  # `hook collect` of a script that never started


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def secret_line(secret: str) -> bytes:
    """What a runner or a channel's program reads first from its stdin (``frame.sh``)."""
    return f"{secret}\n".encode()


def marker(secret: str, header: str) -> bytes:
    """The line ``frame HEADER`` prints (tests and the fake transport speak with it)."""
    return f"\n{secret} {header}\n".encode()


def _one_line(value: str) -> str:
    """``value`` quoted for sh on one line: its newlines become the runner's ``$newline``."""
    return '"$newline"'.join(shlex.quote(part) for part in value.split("\n"))


def runner_request(calls: tuple[ProgramCall, ...], stdin_size: int) -> bytes:
    """The runner's request for ``calls``: one line, then ``stdin_size`` bytes of stdin follow."""
    # `&&`: a program that fails (the probe, for a host that lacks a tool) stops the rest (the
    # lock is not taken).
    line = " && ".join(
        " ".join([call.program, *(_one_line(arg) for arg in call.args)]) for call in calls
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


class ReplyOverflow(Exception):
    """A reply grew past ``RunnerReplies``' limit (the transport names the host)."""


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
                    if header.startswith(b"exit "):
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
        stderr = b"".join(body for name, body in frames if name == "stderr")
        frames = tuple(frame for frame in frames if frame[0] != "stderr")
        exit_status = int(status) if status.isdigit() else None
        return CommandResult(exit_status, text(output), text(stderr), frames)


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _section(result: CommandResult, name: str) -> bytes | None:
    return next((body for header, body in result.frames if header == name), None)


def _values(data: bytes | None) -> dict[str, str]:
    """A section of key=value lines; the first of a key counts."""
    values: dict[str, str] = {}
    for line in text(data or b"").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key, value)
    return values


@dataclass
class Probe:
    """What a host holds for the deployment group before the deployment touches it."""

    last_successful: str | None = None
    last_deployment: tuple[str, str, str] | None = None  # (deployment id, status, sha256)
    bundles: dict[str, str] = field(default_factory=dict)  # sha256 -> bundle.tar path
    old_appspec: str | None = None  # None: no last successful install; MISSING_APPSPEC: gone
    ongoing_event: str | None = None  # the event the probed deployment was in (resume)
    missing_tools: tuple[str, ...] = ()  # commands the host lacks: it cannot be deployed to


def parse_probe(result: CommandResult) -> Probe:
    """``probe.sh``'s reply."""
    probe = Probe()
    for line in text(_section(result, "probe") or b"").splitlines():
        key, _, value = line.partition("=")
        if key == "last_successful":
            probe.last_successful = value or None
        elif key == "last_deployment" and len(value.split()) == 3:
            did, status, sha = value.split()
            probe.last_deployment = (did, status, sha)
        elif key == "bundle" and " " in value:
            sha, path = value.split(" ", 1)
            probe.bundles.setdefault(sha, path)
        elif key == "ongoing":
            probe.ongoing_event = value or None
        elif key == "missing_tools":
            probe.missing_tools = tuple(value.split())
    if probe.last_successful:
        appspec = _section(result, "appspec")
        if appspec is not None:
            probe.old_appspec = text(appspec)
        elif _section(result, "appspec-missing") is not None:
            probe.old_appspec = MISSING_APPSPEC
    return probe


@dataclass(frozen=True)
class LockState:
    """What ``lock.sh`` said: the outcome and, when someone else holds it, who."""

    state: str
    holder: dict[str, str] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.state in ("acquired", "reacquired", "took-over", "refreshed", "released")


def parse_lock(result: CommandResult) -> LockState:
    """``lock.sh``'s reply: its own lines in the frames "lock", the holder's in "lock-holder"."""
    values = _values(b"\n".join(body for name, body in result.frames if name == "lock"))
    holder = _values(b"\n".join(body for name, body in result.frames if name == "lock-holder"))
    state = values.pop("lock", "unknown")
    return LockState(state, {**holder, **values})


@dataclass(frozen=True)
class HookResult:
    code: int
    error_code: str
    message: str
    warning: str
    stdout: str
    stderr: str
    capped: bool = False  # stdout or stderr is only the tail of what the script printed

    @property
    def ok(self) -> bool:
        return self.error_code == "Success"

    @property
    def started(self) -> bool:
        return self.error_code != NOT_STARTED


# The longest duration a host program is sent: 31 years, in tenths well within sh's 64-bit
# arithmetic, and beyond any hook timeout or grace anyone means.
MAX_SECONDS = 10**9


def seconds_argument(seconds: float) -> str:
    """A duration as the host programs' sh reads it: a plain decimal, never an exponent (Python's
    ``%g`` sends 1000000 as ``1e+06``, which sh's arithmetic cannot read), at most three decimals
    (rounded up: a grace is never shortened), within 0..MAX_SECONDS."""
    if math.isnan(seconds):
        raise ValueError("a duration cannot be NaN")
    millis = math.ceil(min(max(seconds, 0.0), MAX_SECONDS) * 1000 - 1e-6)
    whole, fraction = divmod(max(millis, 0), 1000)
    return f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") if fraction else str(whole)


def hook_tail_argument() -> str:
    """``hook start`` and ``hook collect`` send one byte more than is kept: a stream that long
    was cut."""
    return str(HOOK_TAIL_BYTES + 1)


def _tail(data: bytes) -> tuple[str, bool]:
    if len(data) <= HOOK_TAIL_BYTES:
        return text(data), False
    data = data[-HOOK_TAIL_BYTES:]
    newline = data.find(b"\n")
    return text(data[newline + 1 :] if 0 <= newline < len(data) - 1 else data), True


def parse_hook(result: CommandResult) -> HookResult | None:
    """``hook.sh``'s reply; None when it has none (the channel ended before it could report)."""
    head = _section(result, "hook")
    if head is None:
        return None
    values = _values(head)
    code_text, _, error_code = values.get("status", "5 UnknownError").partition(" ")
    stdout, stdout_capped = _tail(_section(result, "script-stdout") or b"")
    stderr, stderr_capped = _tail(_section(result, "script-stderr") or b"")
    return HookResult(
        code=int(code_text) if code_text.lstrip("-").isdigit() else 5,
        error_code=error_code or "UnknownError",
        message=values.get("message", "the hook runner printed no result"),
        warning=values.get("warning", ""),
        stdout=stdout,
        stderr=stderr,
        capped=stdout_capped or stderr_capped,
    )
