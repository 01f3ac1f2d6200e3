"""What the host programs reply, as types: a parse function per program reads its framed sections
(``framing.py``) into a dataclass, and each dataclass renders the same sections back (what a
fake host replies). The states and keys the sh programs print are the StrEnums here, and nowhere
else on the controller's side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.hostproto import framing
from orchestrator.hostproto.holder import LockField, LockHolder
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.transport.base import CommandResult

# What a host sends of each of a hook script's stdout and stderr: their last 64 KiB. The whole
# output stays in the deployment's logs/scripts.log on the host.
HOOK_TAIL_BYTES = 64 * 1024

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
    FETCH = "fetch"  # curl or wget, whichever the host has (curl first), or empty: neither


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
    UNKNOWN = "unknown"  # the controller's: a state it does not know (``LockReply.raw``)
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
# The controller's own: no host reply reads as one of them.
CONTROLLER_STATES = frozenset({LockState.UNKNOWN, LockState.UNREACHABLE})


# What the probe may name as the host's way to fetch a bundle from a bundle store.
FETCH_TOOL_NAMES = ("curl", "wget")

# What ``hook collect`` says of a hook that never started, in place of its error code.
NOT_STARTED = "NotStarted"


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


@dataclass(frozen=True)
class LastDeployment:
    """The last deployment a host recorded for the group (``finish.sh``)."""

    deployment_id: str
    status: str  # "Succeeded" or "Failed", as finish recorded it
    sha256: str

    def line(self) -> str:
        return f"{self.deployment_id} {self.status} {self.sha256}"

    @classmethod
    def parse(cls, value: str) -> LastDeployment | None:
        parts = value.split()
        return cls(*parts) if len(parts) == 3 else None


@dataclass(frozen=True)
class Probe:
    """What a host holds for the deployment group before the deployment touches it."""

    last_successful: str | None = None
    last_deployment: LastDeployment | None = None
    bundles: tuple[tuple[str, str], ...] = ()  # (sha256, bundle.tar path), the first of a sha
    old_appspec: str | None = None  # the last successful install's appspec, when it is there
    appspec_missing: bool = False  # a last successful install whose appspec is gone
    ongoing_event: str | None = None  # the event the probed deployment was in (resume)
    missing_tools: tuple[str, ...] = ()  # commands the host lacks: it cannot be deployed to
    fetch: str | None = None  # what fetches a bundle from a bundle store: curl or wget

    def bundle(self, sha256: str) -> str | None:
        """The path of a bundle the host holds with this digest."""
        return next((path for sha, path in self.bundles if sha == sha256), None)

    def frames(self) -> Frames:
        """The sections ``probe.sh`` prints for what this says."""
        if self.missing_tools:
            tools = " ".join(self.missing_tools)
            return ((Section.PROBE.value, _lines([(ProbeField.MISSING_TOOLS.value, tools)])),)
        pairs = [(ProbeField.LAST_SUCCESSFUL.value, self.last_successful or "")]
        if self.last_deployment is not None:
            pairs.append((ProbeField.LAST_DEPLOYMENT.value, self.last_deployment.line()))
        pairs.extend((ProbeField.BUNDLE.value, f"{sha} {path}") for sha, path in self.bundles)
        if self.ongoing_event is not None:
            pairs.append((ProbeField.ONGOING.value, self.ongoing_event))
        pairs.append((ProbeField.FETCH.value, self.fetch or ""))
        frames: list[tuple[str, bytes]] = [(Section.PROBE.value, _lines(pairs))]
        if self.appspec_missing:
            frames.append((Section.APPSPEC_MISSING.value, b""))
        elif self.old_appspec is not None:
            frames.append((Section.APPSPEC.value, self.old_appspec.encode()))
        return tuple(frames)


def parse_probe(result: CommandResult) -> Probe:
    """``probe.sh``'s reply."""
    last_successful = ongoing = last = fetch = None
    bundles: dict[str, str] = {}
    tools: tuple[str, ...] = ()
    for line in framing.text(_section(result, Section.PROBE) or b"").splitlines():
        key, _, value = line.partition("=")
        if key == ProbeField.LAST_SUCCESSFUL:
            last_successful = value or None
        elif key == ProbeField.LAST_DEPLOYMENT:
            last = LastDeployment.parse(value) or last
        elif key == ProbeField.BUNDLE and " " in value:
            sha, path = value.split(" ", 1)
            bundles.setdefault(sha, path)
        elif key == ProbeField.ONGOING:
            ongoing = value or None
        elif key == ProbeField.MISSING_TOOLS:
            tools = tuple(value.split())
        elif key == ProbeField.FETCH:
            fetch = value if value in FETCH_TOOL_NAMES else None
    appspec, missing = None, False
    if last_successful:
        found = _section(result, Section.APPSPEC)
        appspec = framing.text(found) if found is not None else None
        missing = found is None and _section(result, Section.APPSPEC_MISSING) is not None
    bundles_held = tuple(bundles.items())
    return Probe(last_successful, last, bundles_held, appspec, missing, ongoing, tools, fetch)


@dataclass(frozen=True)
class LockReply:
    """What ``lock.sh`` said: the outcome and, when someone else holds it, who; why it failed;
    the state as the host said it when it is none the controller knows."""

    state: LockState
    holder: LockHolder = field(default_factory=LockHolder)
    error: str | None = None  # why the lock could not be written (``LockState.FAILED``)
    raw: str = ""  # ``LockState.UNKNOWN``: what the host said instead of a state

    @classmethod
    def of(
        cls, state: LockState, *, deployment: str | None = None, error: str | None = None
    ) -> LockReply:
        """A reply naming the holder's ``deployment``, or why it ``failed``."""
        return cls(state, LockHolder(deployment=deployment), error)

    @property
    def ours(self) -> bool:
        return self.state in OURS

    @property
    def deployment(self) -> str | None:
        """The holder's deployment."""
        return self.holder.deployment

    @property
    def heartbeat_age(self) -> int | None:
        """Seconds since the holder's last heartbeat, as the host counts them."""
        return self.holder.heartbeat_age

    @property
    def shown(self) -> str:
        """The state as an operator is shown it: what the host said, when it is unknown."""
        return self.raw if self.state is LockState.UNKNOWN and self.raw else self.state.value

    def frames(self) -> Frames:
        """The sections ``lock.sh`` prints for this: its own, then the holder's."""
        if self.state is LockState.UNREACHABLE:
            raise ValueError("no host replies 'unreachable': it is the controller's")
        said = self.raw if self.state is LockState.UNKNOWN else self.state.value
        own = [(LockField.LOCK.value, said)] if said else []
        if self.error is not None:
            own.append((LockField.ERROR.value, self.error))
        frames = [(Section.LOCK.value, _lines(own))]
        if self.holder.known:
            frames.append((Section.LOCK_HOLDER.value, _lines(self.holder.pairs())))
        return tuple(frames)


def parse_lock(result: CommandResult) -> LockReply:
    """``lock.sh``'s reply: its own lines in the frames "lock", the holder's in "lock-holder".
    A reply without its frame "lock" (the program did not run, or died before it said anything)
    is a lock that failed, for what its stderr says."""
    own = [body for name, body in result.frames if name == Section.LOCK]
    if not own:
        why = result.stderr.strip() or f"lock.sh replied nothing (exit status {result.exit_status})"
        return LockReply(LockState.FAILED, error=why[-500:])
    held = b"\n".join(body for name, body in result.frames if name == Section.LOCK_HOLDER)
    values = _values(b"\n".join(own))
    said = values.get(LockField.LOCK.value, "")
    try:
        state = LockState(said)
    except ValueError:
        state = LockState.UNKNOWN
    if state in CONTROLLER_STATES:
        state = LockState.UNKNOWN
    raw = said if state is LockState.UNKNOWN else ""
    holder = LockHolder.from_lines(framing.text(held))
    return LockReply(state, holder, values.get(LockField.ERROR.value), raw)


@dataclass(frozen=True)
class HookResult:
    """What ``hook.sh`` replied of a hook: its exit code and outcome, and the tails of what it
    printed."""

    code: int
    error_code: LifecycleErrorCode
    message: str
    warning: str
    stdout: str
    stderr: str
    capped: bool = False  # stdout or stderr is only the tail of what the script printed
    raw: str = ""  # ``UNKNOWN_ERROR`` for a code the controller does not know: that code
    started: bool = True  # False: ``hook collect`` of a hook that never started

    @property
    def ok(self) -> bool:
        return self.started and self.error_code == LifecycleErrorCode.SUCCESS

    @property
    def recorded_code(self) -> str:
        """The error code as the deployment records it: the host's own, when it is unknown."""
        return self.raw or self.error_code.value

    def frames(self) -> Frames:
        """The sections ``hook.sh`` prints for this result."""
        head = [
            (
                HookField.STATUS.value,
                f"{self.code} {self.recorded_code if self.started else NOT_STARTED}",
            ),
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


def _hook_code(value: str) -> tuple[LifecycleErrorCode, str]:
    """The code, and what the host said when it is not one the controller knows."""
    try:
        return LifecycleErrorCode(value), ""
    except ValueError:
        return LifecycleErrorCode.UNKNOWN_ERROR, value


def _status_code(text: str) -> int:
    """The hook's status: a decimal number in ASCII ("²".isdigit() is True, and int() refuses
    it); anything else is 5, as a reply without one."""
    digits = text.removeprefix("-")
    return int(text) if digits.isascii() and digits.isdigit() else 5


def parse_hook(result: CommandResult) -> HookResult | None:
    """``hook.sh``'s reply; None when it has none (the channel ended before it could report)."""
    head = _section(result, Section.HOOK)
    if head is None:
        return None
    values = _values(head)
    status = values.get(HookField.STATUS.value, f"5 {LifecycleErrorCode.UNKNOWN_ERROR.value}")
    code_text, _, said = status.partition(" ")
    started = said != NOT_STARTED
    unknown = LifecycleErrorCode.UNKNOWN_ERROR.value
    error_code, raw = _hook_code(said if said and started else unknown)
    stdout, stdout_capped = _tail(_section(result, Section.SCRIPT_STDOUT) or b"")
    stderr, stderr_capped = _tail(_section(result, Section.SCRIPT_STDERR) or b"")
    return HookResult(
        code=_status_code(code_text),
        error_code=error_code,
        message=values.get(HookField.MESSAGE.value, "the hook runner printed no result"),
        warning=values.get(HookField.WARNING.value, ""),
        stdout=stdout,
        stderr=stderr,
        capped=stdout_capped or stderr_capped,
        raw=raw,
        started=started,
    )
