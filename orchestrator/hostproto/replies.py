"""What the host programs reply, as types: a parse function per program reads its framed sections
(``framing.py``) into a dataclass, and each dataclass renders the same sections back (what a
fake host replies). The states and keys the sh programs print are the StrEnums here, and nowhere
else on the controller's side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.hostproto import framing
from orchestrator.transport.base import CommandResult

# What a host sends of each of a hook script's stdout and stderr: their last 64 KiB. The whole
# output stays in the deployment's logs/scripts.log on the host.
HOOK_TAIL_BYTES = 64 * 1024

MISSING_APPSPEC = "__missing__"  # Probe.old_appspec when the last install's appspec is gone

Frames = tuple[tuple[str, bytes], ...]


class Section(StrEnum):
    """The frames the programs print (``frame NAME``)."""

    PROBE = "probe"
    APPSPEC = "appspec"
    APPSPEC_MISSING = "appspec-missing"
    LOCK = "lock"
    LOCK_HOLDER = "lock-holder"
    HOOK = "hook"
    SCRIPT_STDOUT = "script-stdout"
    SCRIPT_STDERR = "script-stderr"


class ProbeField(StrEnum):
    """The keys of ``probe.sh``'s section "probe"."""

    LAST_SUCCESSFUL = "last_successful"
    LAST_DEPLOYMENT = "last_deployment"  # "DEPLOYMENT_ID STATUS SHA256"
    BUNDLE = "bundle"  # "SHA256 PATH", one line a bundle
    ONGOING = "ongoing"
    MISSING_TOOLS = "missing_tools"


class LockState(StrEnum):
    """What ``lock.sh`` says of the group's lock, and two states of the controller's own."""

    ACQUIRED = "acquired"
    REACQUIRED = "reacquired"  # ours already: a resumed deployment
    TOOK_OVER = "took-over"  # a stale or finished deployment's, taken over
    REFRESHED = "refreshed"  # a heartbeat
    RELEASED = "released"
    HELD = "held"  # someone else's
    NOT_OURS = "not-ours"  # a release of a lock we do not hold
    FREE = "free"
    BROKEN = "broken"
    LOST = "lost"  # a heartbeat found someone else's
    FAILED = "failed"  # it could not be written: the field "error" says why
    UNKNOWN = "unknown"  # the controller's: a reply without a state it knows
    UNREACHABLE = "unreachable"  # the controller's: the host did not answer


OURS = frozenset(
    {
        LockState.ACQUIRED,
        LockState.REACQUIRED,
        LockState.TOOK_OVER,
        LockState.REFRESHED,
        LockState.RELEASED,
    }
)


class LockField(StrEnum):
    """The keys of ``lock.sh``'s sections: its own ("lock") and the holder's ("lock-holder")."""

    LOCK = "lock"
    ERROR = "error"
    DEPLOYMENT = "deployment"
    HOLDER = "holder"
    HEARTBEAT_AGE = "heartbeat_age"


class HookCode(StrEnum):
    """A hook's outcome as ``supervise.sh`` and ``hook.sh`` name it (the agent's error codes)."""

    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_FAILED = "ScriptFailed"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    UNKNOWN_ERROR = "UnknownError"
    NOT_STARTED = "NotStarted"  # `hook collect` of a script that never started


class HookField(StrEnum):
    """The keys of ``hook.sh``'s section "hook"."""

    STATUS = "status"  # "CODE ERROR_CODE"
    MESSAGE = "message"
    WARNING = "warning"


def _section(result: CommandResult, name: Section) -> bytes | None:
    return next((body for header, body in result.frames if header == name), None)


def _values(data: bytes | None) -> dict[str, str]:
    """A section of key=value lines; the first of a key counts."""
    values: dict[str, str] = {}
    for line in framing.text(data or b"").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key, value)
    return values


def _lines(pairs: Sequence[tuple[str, str]]) -> bytes:
    return "".join(f"{key}={value}\n" for key, value in pairs).encode()


@dataclass
class Probe:
    """What a host holds for the deployment group before the deployment touches it."""

    last_successful: str | None = None
    last_deployment: tuple[str, str, str] | None = None  # (deployment id, status, sha256)
    bundles: dict[str, str] = field(default_factory=dict)  # sha256 -> bundle.tar path
    old_appspec: str | None = None  # None: no last successful install; MISSING_APPSPEC: gone
    ongoing_event: str | None = None  # the event the probed deployment was in (resume)
    missing_tools: tuple[str, ...] = ()  # commands the host lacks: it cannot be deployed to

    def frames(self) -> Frames:
        """The sections ``probe.sh`` prints for what this says."""
        if self.missing_tools:
            return (
                (Section.PROBE, _lines([(ProbeField.MISSING_TOOLS, " ".join(self.missing_tools))])),
            )
        pairs = [(ProbeField.LAST_SUCCESSFUL, self.last_successful or "")]
        if self.last_deployment is not None:
            pairs.append((ProbeField.LAST_DEPLOYMENT, " ".join(self.last_deployment)))
        pairs.extend((ProbeField.BUNDLE, f"{sha} {path}") for sha, path in self.bundles.items())
        if self.ongoing_event is not None:
            pairs.append((ProbeField.ONGOING, self.ongoing_event))
        frames: list[tuple[str, bytes]] = [(Section.PROBE, _lines(pairs))]
        if self.old_appspec == MISSING_APPSPEC:
            frames.append((Section.APPSPEC_MISSING, b""))
        elif self.old_appspec is not None:
            frames.append((Section.APPSPEC, self.old_appspec.encode()))
        return tuple(frames)


def parse_probe(result: CommandResult) -> Probe:
    """``probe.sh``'s reply."""
    probe = Probe()
    for line in framing.text(_section(result, Section.PROBE) or b"").splitlines():
        key, _, value = line.partition("=")
        if key == ProbeField.LAST_SUCCESSFUL:
            probe.last_successful = value or None
        elif key == ProbeField.LAST_DEPLOYMENT and len(value.split()) == 3:
            did, status, sha = value.split()
            probe.last_deployment = (did, status, sha)
        elif key == ProbeField.BUNDLE and " " in value:
            sha, path = value.split(" ", 1)
            probe.bundles.setdefault(sha, path)
        elif key == ProbeField.ONGOING:
            probe.ongoing_event = value or None
        elif key == ProbeField.MISSING_TOOLS:
            probe.missing_tools = tuple(value.split())
    if probe.last_successful:
        appspec = _section(result, Section.APPSPEC)
        if appspec is not None:
            probe.old_appspec = framing.text(appspec)
        elif _section(result, Section.APPSPEC_MISSING) is not None:
            probe.old_appspec = MISSING_APPSPEC
    return probe


@dataclass(frozen=True)
class LockReply:
    """What ``lock.sh`` said: the outcome and, when someone else holds it, who (the holder's
    lines, and "error" when it failed)."""

    state: LockState
    holder: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, state: LockState, *, deployment: str | None = None, error: str | None = None
    ) -> LockReply:
        """A reply naming the holder's ``deployment``, or why it ``failed``."""
        holder = {LockField.DEPLOYMENT.value: deployment} if deployment is not None else {}
        if error is not None:
            holder[LockField.ERROR.value] = error
        return cls(state, holder)

    @property
    def ours(self) -> bool:
        return self.state in OURS

    @property
    def error(self) -> str | None:
        """Why the lock could not be written (``LockState.FAILED``)."""
        return self.holder.get(LockField.ERROR)

    @property
    def deployment(self) -> str | None:
        """The holder's deployment."""
        return self.holder.get(LockField.DEPLOYMENT)

    @property
    def heartbeat_age(self) -> str | None:
        """Seconds since the holder's last heartbeat, as the host counts them."""
        return self.holder.get(LockField.HEARTBEAT_AGE)

    def frames(self) -> Frames:
        """The sections ``lock.sh`` prints for this: its own, then the holder's."""
        own = [(LockField.LOCK.value, self.state.value)]
        if self.error is not None:
            own.append((LockField.ERROR.value, self.error))
        held = [(key, value) for key, value in self.holder.items() if key != LockField.ERROR]
        frames = [(Section.LOCK.value, _lines(own))]
        if held:
            frames.append((Section.LOCK_HOLDER.value, _lines(held)))
        return tuple(frames)


def _lock_state(value: str | None) -> LockState:
    try:
        return LockState(value) if value is not None else LockState.UNKNOWN
    except ValueError:
        return LockState.UNKNOWN


def parse_lock(result: CommandResult) -> LockReply:
    """``lock.sh``'s reply: its own lines in the frames "lock", the holder's in "lock-holder"."""
    own = b"\n".join(body for name, body in result.frames if name == Section.LOCK)
    held = b"\n".join(body for name, body in result.frames if name == Section.LOCK_HOLDER)
    values, holder = _values(own), _values(held)
    state = _lock_state(values.pop(LockField.LOCK, None))
    return LockReply(state, {**holder, **values})


@dataclass(frozen=True)
class HookResult:
    """What ``hook.sh`` replied of a hook: its exit code and outcome, and the tails of what it
    printed."""

    code: int
    error_code: HookCode
    message: str
    warning: str
    stdout: str
    stderr: str
    capped: bool = False  # stdout or stderr is only the tail of what the script printed

    @property
    def ok(self) -> bool:
        return self.error_code == HookCode.SUCCESS

    @property
    def started(self) -> bool:
        return self.error_code != HookCode.NOT_STARTED

    def frames(self) -> Frames:
        """The sections ``hook.sh`` prints for this result."""
        head = [
            (HookField.STATUS.value, f"{self.code} {self.error_code}"),
            (HookField.MESSAGE.value, self.message),
            (HookField.WARNING.value, self.warning),
        ]
        return (
            (Section.HOOK.value, _lines(head)),
            (Section.SCRIPT_STDOUT.value, self.stdout.encode()),
            (Section.SCRIPT_STDERR.value, self.stderr.encode()),
        )


def _tail(data: bytes) -> tuple[str, bool]:
    if len(data) <= HOOK_TAIL_BYTES:
        return framing.text(data), False
    data = data[-HOOK_TAIL_BYTES:]
    newline = data.find(b"\n")
    return framing.text(data[newline + 1 :] if 0 <= newline < len(data) - 1 else data), True


def _hook_code(value: str) -> HookCode:
    try:
        return HookCode(value)
    except ValueError:
        return HookCode.UNKNOWN_ERROR


def parse_hook(result: CommandResult) -> HookResult | None:
    """``hook.sh``'s reply; None when it has none (the channel ended before it could report)."""
    head = _section(result, Section.HOOK)
    if head is None:
        return None
    values = _values(head)
    status = values.get(HookField.STATUS, f"5 {HookCode.UNKNOWN_ERROR}")
    code_text, _, error_code = status.partition(" ")
    stdout, stdout_capped = _tail(_section(result, Section.SCRIPT_STDOUT) or b"")
    stderr, stderr_capped = _tail(_section(result, Section.SCRIPT_STDERR) or b"")
    return HookResult(
        code=int(code_text) if code_text.lstrip("-").isdigit() else 5,
        error_code=_hook_code(error_code),
        message=values.get(HookField.MESSAGE, "the hook runner printed no result"),
        warning=values.get(HookField.WARNING, ""),
        stdout=stdout,
        stderr=stderr,
        capped=stdout_capped or stderr_capped,
    )
