"""The host's side of a deployment as calls of the shipped sh programs.

``RemoteHost`` knows the agent-compatible layout (DESIGN §4); it makes the host protocol's requests
and has their replies parsed (``orchestrator.hostproto``). How they reach the host (the session's
runner, or a channel of their own, as root through ``become``) is the transport's business. No
deployment logic here.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import Unreachable
from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.replies import (
    HookResult,
    LockReply,
    Probe,
    parse_hook,
    parse_lock,
    parse_probe,
)
from orchestrator.hostproto.requests import (
    DownloadRequest,
    FinishRequest,
    HookAbort,
    HookCollect,
    HookStart,
    InstallRequest,
    LockMode,
    LockRequest,
    ProbeRequest,
    RenderedRequest,
)
from orchestrator.models.appspec import MAX_APPSPEC_BYTES
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, HostSession

# How much longer than the host's own bound the controller waits for a hook program's answer.
COLLECT_MARGIN_SECONDS = 30.0
# How long a hook's supervisor may take past the hook's timeout and grace (logging, reporting).
HOOK_RESULT_SLACK = 60.0

__all__ = [
    "HookResult",
    "LockHolder",
    "LockMode",
    "LockReply",
    "Probe",
    "RemoteHost",
]


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

    async def probe_and_lock(
        self, deployment_id: str, ttl: int, holder: LockHolder
    ) -> tuple[Probe, LockReply]:
        """Read the host's state and take the group's lock on it, in one round trip."""
        # One byte more than an appspec may have: a longer one is refused, not parsed.
        probe = ProbeRequest(self.root, self.group_id, deployment_id, MAX_APPSPEC_BYTES + 1)
        lock = self._lock(LockMode.ACQUIRE, deployment_id, ttl, holder)
        result = await self.session.call(probe.call(), lock.call())
        return parse_probe(result), parse_lock(result)

    async def take_over_lock(
        self, deployment_id: str, ttl: int, holder: LockHolder, finished: str
    ) -> LockReply:
        """Take the lock from ``finished``, a deployment known to have ended."""
        request = self._lock(LockMode.ACQUIRE, deployment_id, ttl, holder, finished)
        return parse_lock(await self.session.call(request.call()))

    def _lock(
        self,
        mode: LockMode,
        deployment_id: str | None,
        ttl: int | None = None,
        holder: LockHolder | None = None,
        finished: str | None = None,
    ) -> LockRequest:
        return LockRequest(mode, self.root, self.group_id, deployment_id, ttl, holder, finished)

    async def lock(self, mode: LockMode, deployment_id: str | None = None) -> LockReply:
        """``heartbeat``, ``release``, ``status`` or ``break`` the group's lock on this host.
        A heartbeat comes while a hook runs: it does not wait for the runner."""
        call = self._lock(mode, deployment_id).call()
        return parse_lock(await self.session.call(call, ordered=mode != LockMode.HEARTBEAT))

    async def abort_hook(self, deployment_id: str, event: str, index: int, grace: float) -> None:
        request = HookAbort(self.hook_base(deployment_id, event, index), grace)
        await self.session.call(
            request.call(), ordered=False, timeout=grace + COLLECT_MARGIN_SECONDS
        )

    async def download(
        self,
        deployment_id: str,
        sha256: str,
        existing: str | None,
        bundle: Path,
        max_revisions: int,
        last_successful: str | None,
    ) -> CommandResult:
        request = DownloadRequest(
            self.root,
            self.group_id,
            deployment_id,
            sha256,
            existing,
            max_revisions,
            last_successful,
        )
        return await self.session.call(request.call(), stdin_file=None if existing else bundle)

    async def fetch(
        self,
        deployment_id: str,
        sha256: str,
        url: str,
        tool: str,
        last_successful: str | None,
    ) -> CommandResult:
        """DownloadBundle from a bundle store: the host fetches ``url`` with ``tool`` (curl or
        wget). The URL is a credential: it goes on stdin, never on the command line."""
        request = DownloadRequest(
            self.root,
            self.group_id,
            deployment_id,
            sha256,
            None,
            self.spec.max_revisions,
            last_successful,
            tool,
        )
        return await self.session.call(request.call(), stdin=f"{url}\n".encode())

    async def put_rendered(self, deployment_id: str, archive: bytes) -> CommandResult:
        """This host's rendered templates (a tar) into the deployment directory."""
        request = RenderedRequest(self.root, self.group_id, deployment_id)
        return await self.session.call(request.call(), stdin=archive)

    async def install(self, deployment_id: str, instructions: bytes) -> CommandResult:
        request = InstallRequest(self.root, self.group_id, deployment_id)
        return await self.session.call(request.call(), stdin=instructions)

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
        request = HookStart(
            self.hook_base(deployment_id, event, index),
            self.root,
            self.group_id,
            deployment_id,
            event,
            script,
            location,
            timeout,
            runas,
            archive,
            grace,
            tuple(env.items()),
        )
        result = await self.session.call(
            request.call(),
            # Past this the host is not answering: the caller reconnects and collects.
            timeout=timeout + grace + HOOK_RESULT_SLACK + COLLECT_MARGIN_SECONDS,
        )
        return self._hook_result(result)

    async def collect_hook(
        self, deployment_id: str, event: str, index: int, within: float
    ) -> HookResult:
        """The result of a hook started earlier, waited for at most ``within`` seconds: on the
        host (which then answers that it has none) and here (a host that does not answer)."""
        request = HookCollect(self.hook_base(deployment_id, event, index), within)
        result = await self.session.call(request.call(), timeout=within + COLLECT_MARGIN_SECONDS)
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
        request = FinishRequest(self.root, self.group_id, deployment_id, status, sha256)
        await self.session.call(request.call())
