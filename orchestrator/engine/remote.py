"""The host's side of a deployment as calls of the shipped sh programs.

``RemoteHost`` knows the agent-compatible layout (DESIGN §4); it names the programs and their
arguments and parses what they print. How they reach the host (the session's runner, or a channel
of their own, as root through ``become``) is the transport's business. No deployment logic here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import Unreachable
from orchestrator.models.inventory import HostSpec
from orchestrator.transport.base import CommandResult, HostSession, ProgramCall

MISSING_APPSPEC = "__missing__"
NOT_STARTED = "NotStarted"  # `hook collect` of a script that never started


@dataclass
class Probe:
    """What a host holds for the deployment group before the deployment touches it."""

    last_successful: str | None = None
    last_deployment: tuple[str, str, str] | None = None  # (deployment id, status, sha256)
    bundles: dict[str, str] = field(default_factory=dict)  # sha256 -> bundle.tar path
    old_appspec: str | None = None  # None: no last successful install; MISSING_APPSPEC: gone
    ongoing_event: str | None = None  # the event the probed deployment was in (resume)
    cleanup: tuple[str, ...] = ()  # shared between hosts whose cleanup files are the same
    missing_tools: tuple[str, ...] = ()  # commands the host lacks: it cannot be deployed to


@dataclass(frozen=True)
class LockState:
    """What ``lock.sh`` said: the outcome and, when someone else holds it, who."""

    state: str
    holder: dict[str, str] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.state in ("acquired", "reacquired", "took-over", "refreshed", "released")


def parse_lock(text: str) -> LockState:
    values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    state = values.pop("lock", "unknown")
    return LockState(state, values)


@dataclass(frozen=True)
class HookResult:
    code: int
    error_code: str
    message: str
    warning: str
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.error_code == "Success"

    @property
    def started(self) -> bool:
        return self.error_code != NOT_STARTED


def parse_probe(text: str) -> Probe:
    probe = Probe()
    head, _, rest = text.partition("---appspec---\n")
    appspec, _, cleanup = rest.partition("---cleanup---\n")
    for line in head.splitlines():
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
        probe.old_appspec = MISSING_APPSPEC if appspec.strip() == MISSING_APPSPEC else appspec
    probe.cleanup = _cleanup_lines(cleanup)
    return probe


@functools.lru_cache(maxsize=8)
def _cleanup_lines(text: str) -> tuple[str, ...]:
    """Hosts deployed together have the same cleanup file: one copy of its lines for all of them
    (at 500 hosts, one list per host was about 12 MB of the controller's memory)."""
    return tuple(line for line in text.split("\n") if line)


def parse_hook_output(text: str) -> HookResult:
    head, _, rest = text.partition("---stdout---\n")
    stdout, _, stderr = rest.partition("---stderr---\n")
    values = dict(line.partition("=")[::2] for line in head.splitlines())
    code_text, _, error_code = values.get("status", "5 UnknownError").partition(" ")
    return HookResult(
        code=int(code_text) if code_text.lstrip("-").isdigit() else 5,
        error_code=error_code or "UnknownError",
        message=values.get("message", "the hook runner printed no result"),
        warning=values.get("warning", ""),
        stdout=stdout,
        stderr=stderr,
    )


class RemoteHost:
    """One host's deployment-group state, reached through a ``HostSession``."""

    def __init__(self, session: HostSession, spec: HostSpec, group_id: str) -> None:
        self.session = session
        self.spec = spec
        self.group_id = group_id

    @property
    def root(self) -> str:
        return self.spec.deployment_root

    def deployment_dir(self, deployment_id: str) -> str:
        return f"{self.root}/{self.group_id}/{deployment_id}"

    def hook_base(self, deployment_id: str, event: str, index: int) -> str:
        return f"{self.deployment_dir(deployment_id)}/hooks/{event}.{index}"

    def call(self, name: str, *args: str) -> ProgramCall:
        return ProgramCall(name, args)

    async def probe_and_lock(
        self, deployment_id: str, ttl: int, holder: str
    ) -> tuple[Probe, LockState]:
        """Read the host's state and take the group's lock on it, in one round trip."""
        result = await self.session.call(
            self.call("probe", self.root, self.group_id, deployment_id),
            self.lock_call("acquire", deployment_id, str(ttl), holder),
        )
        probe_text, _, lock_text = result.stdout.partition("---lock---\n")
        return parse_probe(probe_text), parse_lock(lock_text)

    async def take_over_lock(
        self, deployment_id: str, ttl: int, holder: str, finished: str
    ) -> LockState:
        """Take the lock from ``finished``, a deployment known to have ended."""
        call = self.lock_call("acquire", deployment_id, str(ttl), holder, finished)
        return parse_lock((await self.session.call(call)).stdout)

    def lock_call(self, mode: str, deployment_id: str = "-", *extra: str) -> ProgramCall:
        return self.call("lock", mode, self.root, self.group_id, deployment_id, *extra)

    async def lock(self, mode: str, deployment_id: str = "-") -> LockState:
        """``heartbeat``, ``release``, ``status`` or ``break`` the group's lock on this host.
        A heartbeat comes while a hook runs: it does not wait for the runner."""
        call = self.lock_call(mode, deployment_id)
        return parse_lock((await self.session.call(call, step=mode != "heartbeat")).stdout)

    async def abort_hook(self, deployment_id: str, event: str, index: int, grace: float) -> None:
        base = self.hook_base(deployment_id, event, index)
        await self.session.call(self.call("hook", "abort", base, f"{grace:g}"), step=False)

    async def download(
        self,
        deployment_id: str,
        sha256: str,
        existing: str | None,
        bundle: Path,
        max_revisions: int,
        last_successful: str | None,
    ) -> CommandResult:
        call = self.call(
            "download",
            self.root,
            self.group_id,
            deployment_id,
            sha256,
            existing or "",
            str(max_revisions),
            last_successful or "",
        )
        return await self.session.call(call, stdin_file=None if existing else bundle)

    async def install(self, deployment_id: str, instructions: bytes) -> CommandResult:
        call = self.call("install", self.root, self.group_id, deployment_id)
        return await self.session.call(call, stdin=instructions)

    async def run_hook(
        self,
        *,
        deployment_id: str,
        event: str,
        index: int,
        script: str,
        location: str,
        timeout: int,
        runas: str | None,
        archive: str,
        grace: float,
        env: dict[str, str],
    ) -> HookResult:
        base = self.hook_base(deployment_id, event, index)
        supervisor_args = [
            self.root,
            self.group_id,
            deployment_id,
            event,
            script,
            location,
            str(timeout),
            runas or "",
            archive,
            f"{grace:g}",
        ]
        result = await self.session.call(
            # The hook's variables as arguments: hook.sh exports them in the fork it already is.
            self.call(
                "hook", "start", base, *supervisor_args, *(f"{k}={v}" for k, v in env.items())
            )
        )
        if "---stdout---" not in result.stdout:
            # The channel ended before the launcher could report: the connection went away.
            raise Unreachable(self.spec.name, "the connection closed while a hook ran")
        return parse_hook_output(result.stdout)

    async def collect_hook(self, deployment_id: str, event: str, index: int) -> HookResult:
        call = self.call("hook", "collect", self.hook_base(deployment_id, event, index))
        return parse_hook_output((await self.session.call(call)).stdout)

    async def finish(self, deployment_id: str, status: str, sha256: str) -> None:
        await self.session.call(
            self.call("finish", self.root, self.group_id, deployment_id, status, sha256)
        )
