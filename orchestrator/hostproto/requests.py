"""What the controller asks of the host programs, as types: a frozen dataclass per request whose
``argv`` is the program's positional arguments (the order the sh program reads them in) and whose
``call`` is what a session runs. ``parse_call`` reads a call back into its request (what a fake
host answers by). Nothing else on the controller's side knows an argument's position."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.replies import HOOK_TAIL_BYTES
from orchestrator.transport.base import ScriptCall

# The longest duration a host program is sent: 31 years, in tenths well within sh's 64-bit
# arithmetic, and beyond any hook timeout or grace anyone means.
MAX_SECONDS = 10**9
NONE = "-"  # a deployment id or status the program is told there is none of
# download's exit status when the host could not fetch the bundle from the bundle store (or what
# it fetched was not the bundle): the controller may push it instead (``fallback: push``).
FETCH_FAILED = 4


class Program(StrEnum):
    """The programs a session's runner holds as functions (``programs/<name>.sh``)."""

    PROBE = "probe"
    LOCK = "lock"
    DOWNLOAD = "download"
    INSTALL = "install"
    RENDERED = "rendered"
    HOOK = "hook"
    FINISH = "finish"


class LockMode(StrEnum):
    ACQUIRE = "acquire"
    HEARTBEAT = "heartbeat"
    RELEASE = "release"
    STATUS = "status"
    BREAK = "break"


class HookMode(StrEnum):
    START = "start"
    COLLECT = "collect"
    ABORT = "abort"


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


def _optional(*values: str | None) -> tuple[str, ...]:
    """Trailing arguments up to the last one given (sh reads a missing one as its default)."""
    given = list(values)
    while given and given[-1] is None:
        given.pop()
    return tuple(value or "" for value in given)


class _Request(ABC):
    """A request of one program: its arguments in the order the program reads them."""

    PROGRAM: ClassVar[Program]

    @abstractmethod
    def argv(self) -> tuple[str, ...]: ...

    def call(self) -> ScriptCall:
        return ScriptCall(self.PROGRAM.value, self.argv())


@dataclass(frozen=True)
class ProbeRequest(_Request):
    """``probe ROOT GROUP_ID [DEPLOYMENT_ID [APPSPEC_BYTES]]``: what the host holds for the group
    (``replies.Probe``)."""

    PROGRAM: ClassVar[Program] = Program.PROBE
    root: str
    group_id: str
    deployment_id: str | None = None
    appspec_bytes: int | None = None  # read no more of the last install's appspec

    def argv(self) -> tuple[str, ...]:
        limit = None if self.appspec_bytes is None else str(self.appspec_bytes)
        return (self.root, self.group_id, *_optional(self.deployment_id, limit))

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> ProbeRequest:
        root, group_id, *rest = args
        limit = int(rest[1]) if len(rest) > 1 and rest[1] else None
        return cls(root, group_id, rest[0] if rest else None, limit)


@dataclass(frozen=True)
class LockRequest(_Request):
    """``lock MODE ROOT GROUP_ID DEPLOYMENT_ID [TTL HOLDER [FINISHED]]``: the group's lock
    (``replies.LockReply``)."""

    PROGRAM: ClassVar[Program] = Program.LOCK
    mode: LockMode
    root: str
    group_id: str
    deployment_id: str | None = None  # status, break: none
    ttl: int | None = None  # acquire: a lock without a heartbeat for longer is taken over
    holder: LockHolder | None = None  # acquire: who takes it (its ``lines``)
    finished: str | None = None  # acquire: a deployment known to have ended, taken over

    def argv(self) -> tuple[str, ...]:
        ttl = None if self.ttl is None else str(self.ttl)
        holder = None if self.holder is None else self.holder.lines()
        extra = _optional(ttl, holder, self.finished)
        did = self.deployment_id or NONE
        return (self.mode.value, self.root, self.group_id, did, *extra)

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> LockRequest:
        mode, root, group_id, deployment_id, *rest = args
        ttl = int(rest[0]) if rest and rest[0] else None
        holder = LockHolder.from_lines(rest[1]) if len(rest) > 1 else None
        finished = rest[2] if len(rest) > 2 else None
        did = None if deployment_id == NONE else deployment_id
        return cls(LockMode(mode), root, group_id, did, ttl, holder, finished)


@dataclass(frozen=True)
class DownloadRequest(_Request):
    """``download ROOT GROUP_ID DEPLOYMENT_ID SHA256 EXISTING MAX_REVISIONS LAST_SUCCESSFUL
    [FETCH]``: the bundle from ``existing`` on the host, else fetched with ``fetch`` (curl or
    wget) from the URL on stdin's first line, else from stdin; its output is the step's log."""

    PROGRAM: ClassVar[Program] = Program.DOWNLOAD
    root: str
    group_id: str
    deployment_id: str
    sha256: str
    existing: str | None  # a bundle.tar already on the host
    max_revisions: int
    last_successful: str | None  # kept whatever the retention
    fetch: str | None = None  # curl or wget: fetched from a bundle store's presigned URL

    def argv(self) -> tuple[str, ...]:
        return (
            self.root,
            self.group_id,
            self.deployment_id,
            self.sha256,
            self.existing or "",
            str(self.max_revisions),
            self.last_successful or "",
            *_optional(self.fetch),
        )

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> DownloadRequest:
        root, group_id, deployment_id, sha256, existing, keep, last, *rest = args
        if len(rest) > 1:
            raise ValueError(f"download takes at most 8 arguments: {args!r}")
        fetch = rest[0] if rest and rest[0] else None
        return cls(
            root, group_id, deployment_id, sha256, existing or None, int(keep), last or None, fetch
        )


@dataclass(frozen=True)
class _DeploymentRequest(_Request):
    """A program that takes a deployment's directory (``ROOT GROUP_ID DEPLOYMENT_ID``) and its
    input on stdin."""

    root: str
    group_id: str
    deployment_id: str

    def argv(self) -> tuple[str, ...]:
        return (self.root, self.group_id, self.deployment_id)

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> Self:
        root, group_id, deployment_id = args
        return cls(root, group_id, deployment_id)


@dataclass(frozen=True)
class RenderedRequest(_DeploymentRequest):
    """``rendered ROOT GROUP_ID DEPLOYMENT_ID < tar``: the host's rendered templates, unpacked
    into the deployment directory before Install."""

    PROGRAM: ClassVar[Program] = Program.RENDERED


@dataclass(frozen=True)
class InstallRequest(_DeploymentRequest):
    """``install ROOT GROUP_ID DEPLOYMENT_ID < instructions``: its output is the step's log."""

    PROGRAM: ClassVar[Program] = Program.INSTALL


def _pair(variable: str) -> tuple[str, str]:
    name, sep, value = variable.partition("=")
    if not sep:
        raise ValueError(f"not a variable: {variable!r}")
    return name, value


@dataclass(frozen=True)
class HookStart(_Request):
    """``hook start BASE TAIL ROOT GROUP_ID DEPLOYMENT_ID EVENT SCRIPT LOCATION TIMEOUT RUNAS
    ARCHIVE GRACE [NAME=VALUE...]``: run a hook script, detached, and wait for its result
    (``replies.HookResult``). The hook's variables go as arguments: ``hook.sh`` exports them in
    the fork it already is."""

    PROGRAM: ClassVar[Program] = Program.HOOK
    base: str  # the hook's state files' path, less their suffixes
    root: str
    group_id: str
    deployment_id: str
    event: str
    script: str
    location: str
    timeout: float
    runas: str | None
    archive: str
    grace: float
    env: tuple[tuple[str, str], ...] = ()  # the hook's variables, (name, value) in order

    def argv(self) -> tuple[str, ...]:
        supervisor = (
            self.root,
            self.group_id,
            self.deployment_id,
            self.event,
            self.script,
            self.location,
            seconds_argument(self.timeout),
            self.runas or "",
            self.archive,
            seconds_argument(self.grace),
        )
        variables = (f"{key}={value}" for key, value in self.env)
        return (HookMode.START.value, self.base, hook_tail_argument(), *supervisor, *variables)

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> HookStart:
        base, root, gid, did, event, script, location = args[1:2] + args[3:9]
        timeout, runas, archive, grace = args[9:13]
        env = tuple(_pair(variable) for variable in args[13:])
        return cls(
            base,
            root,
            gid,
            did,
            event,
            script,
            location,
            float(timeout),
            runas or None,
            archive,
            float(grace),
            env,
        )


@dataclass(frozen=True)
class HookCollect(_Request):
    """``hook collect BASE TAIL [LIMIT]``: the result of a hook started earlier, waited for at
    most ``within`` seconds (``replies.HookResult``; ``NotStarted`` when nothing started it)."""

    PROGRAM: ClassVar[Program] = Program.HOOK
    base: str
    within: float | None = None

    def argv(self) -> tuple[str, ...]:
        limit = None if self.within is None else seconds_argument(self.within)
        return (HookMode.COLLECT.value, self.base, hook_tail_argument(), *_optional(limit))

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> HookCollect:
        within = float(args[3]) if len(args) > 3 and args[3] else None
        return cls(args[1], within)


@dataclass(frozen=True)
class HookAbort(_Request):
    """``hook abort BASE GRACE``: terminate a running hook (SIGTERM, SIGKILL after ``grace``),
    or keep one not yet running from starting."""

    PROGRAM: ClassVar[Program] = Program.HOOK
    base: str
    grace: float

    def argv(self) -> tuple[str, ...]:
        return (HookMode.ABORT.value, self.base, seconds_argument(self.grace))

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> HookAbort:
        return cls(args[1], float(args[2]))


@dataclass(frozen=True)
class FinishRequest(_Request):
    """``finish ROOT GROUP_ID DEPLOYMENT_ID STATUS SHA256``: the host's part is over; a
    ``status`` of None records nothing (the host's records are another deployment's now)."""

    PROGRAM: ClassVar[Program] = Program.FINISH
    root: str
    group_id: str
    deployment_id: str
    status: str | None
    sha256: str

    def argv(self) -> tuple[str, ...]:
        status = self.status or NONE
        return (self.root, self.group_id, self.deployment_id, status, self.sha256)

    @classmethod
    def from_argv(cls, args: tuple[str, ...]) -> FinishRequest:
        root, group_id, deployment_id, status, sha256 = args
        return cls(root, group_id, deployment_id, None if status == NONE else status, sha256)


HostRequest = (
    ProbeRequest
    | LockRequest
    | DownloadRequest
    | InstallRequest
    | RenderedRequest
    | HookStart
    | HookCollect
    | HookAbort
    | FinishRequest
)

_HOOKS: dict[str, type[HookStart | HookCollect | HookAbort]] = {
    HookMode.START: HookStart,
    HookMode.COLLECT: HookCollect,
    HookMode.ABORT: HookAbort,
}
_REQUESTS: dict[
    str,
    type[
        ProbeRequest
        | LockRequest
        | DownloadRequest
        | InstallRequest
        | RenderedRequest
        | FinishRequest
    ],
] = {
    Program.PROBE: ProbeRequest,
    Program.LOCK: LockRequest,
    Program.DOWNLOAD: DownloadRequest,
    Program.INSTALL: InstallRequest,
    Program.RENDERED: RenderedRequest,
    Program.FINISH: FinishRequest,
}


def parse_call(call: ScriptCall) -> HostRequest:
    """The request ``call`` makes; ``ValueError`` for a call of no program of ours, or arguments
    its program does not take."""
    if call.name != Program.HOOK and call.name not in _REQUESTS:
        raise ValueError(f"not a host program: {call.name}")
    try:
        if call.name == Program.HOOK:
            return _HOOKS[call.args[0]].from_argv(call.args)
        return _REQUESTS[call.name].from_argv(call.args)
    except (IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"not a request of {call.name}: {call.args!r}") from exc
