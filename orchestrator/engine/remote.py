"""The host's side of a deployment as calls of the shipped sh programs.

``RemoteHost`` knows the agent-compatible layout (DESIGN §4); it names the programs and their
arguments, and has their replies parsed by the wire format's module (``transport/remote/wire``).
How they reach the host (the session's runner, or a channel of their own, as root through
``become``) is the transport's business. No deployment logic here.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import Unreachable
from orchestrator.models.appspec import MAX_APPSPEC_BYTES
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, HostSession, ProgramCall
from orchestrator.transport.remote.wire import (
    MISSING_APPSPEC,
    NOT_STARTED,
    HookResult,
    LockState,
    Probe,
    hook_tail_argument,
    parse_hook,
    parse_lock,
    parse_probe,
    seconds_argument,
)

# How much longer than the host's own bound the controller waits for a hook program's answer.
COLLECT_MARGIN_SECONDS = 30.0
# How long a hook's supervisor may take past the hook's timeout and grace (logging, reporting).
HOOK_RESULT_SLACK = 60.0

__all__ = ["MISSING_APPSPEC", "NOT_STARTED", "HookResult", "LockState", "Probe", "RemoteHost"]


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
            # One byte more than an appspec may have: a longer one is refused, not parsed.
            self.call("probe", self.root, self.group_id, deployment_id, str(MAX_APPSPEC_BYTES + 1)),
            self.lock_call("acquire", deployment_id, str(ttl), holder),
        )
        return parse_probe(result), parse_lock(result)

    async def take_over_lock(
        self, deployment_id: str, ttl: int, holder: str, finished: str
    ) -> LockState:
        """Take the lock from ``finished``, a deployment known to have ended."""
        call = self.lock_call("acquire", deployment_id, str(ttl), holder, finished)
        return parse_lock(await self.session.call(call))

    def lock_call(self, mode: str, deployment_id: str = "-", *extra: str) -> ProgramCall:
        return self.call("lock", mode, self.root, self.group_id, deployment_id, *extra)

    async def lock(self, mode: str, deployment_id: str = "-") -> LockState:
        """``heartbeat``, ``release``, ``status`` or ``break`` the group's lock on this host.
        A heartbeat comes while a hook runs: it does not wait for the runner."""
        call = self.lock_call(mode, deployment_id)
        return parse_lock(await self.session.call(call, step=mode != "heartbeat"))

    async def abort_hook(self, deployment_id: str, event: str, index: int, grace: float) -> None:
        base = self.hook_base(deployment_id, event, index)
        call = self.call("hook", "abort", base, seconds_argument(grace))
        await self.session.call(call, step=False, timeout=grace + COLLECT_MARGIN_SECONDS)

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
            seconds_argument(timeout),
            runas or "",
            archive,
            seconds_argument(grace),
        ]
        variables = (f"{k}={v}" for k, v in env.items())
        result = await self.session.call(
            # The hook's variables as arguments: hook.sh exports them in the fork it already is.
            self.call("hook", "start", base, hook_tail_argument(), *supervisor_args, *variables),
            # Past this the host is not answering: the caller reconnects and collects.
            timeout=timeout + grace + HOOK_RESULT_SLACK + COLLECT_MARGIN_SECONDS,
        )
        return self._hook_result(result)

    async def collect_hook(
        self, deployment_id: str, event: str, index: int, within: float
    ) -> HookResult:
        """The result of a hook started earlier, waited for at most ``within`` seconds: on the
        host (which then answers that it has none) and here (a host that does not answer)."""
        base = self.hook_base(deployment_id, event, index)
        call = self.call("hook", "collect", base, hook_tail_argument(), seconds_argument(within))
        result = await self.session.call(call, timeout=within + COLLECT_MARGIN_SECONDS)
        return self._hook_result(result)

    def _hook_result(self, result: CommandResult) -> HookResult:
        hook = parse_hook(result)
        if hook is None:
            # The channel ended before the launcher could report: the connection went away.
            raise Unreachable(self.spec.name, "the connection closed while a hook ran")
        return hook

    async def finish(self, deployment_id: str, status: str | None, sha256: str) -> None:
        """The host's part is over: record ``status`` as its last deployment (None: record
        nothing, the host's records are another deployment's now)."""
        await self.session.call(
            self.call("finish", self.root, self.group_id, deployment_id, status or "-", sha256)
        )
