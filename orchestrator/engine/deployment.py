"""The fleet loop: connect and probe every host, then let the scheduler decide who starts.

One connection per host for the whole deployment (opened under the transport's handshake cap);
a host that cannot be reached at the start is a failed target. Hosts run as tasks; each time one
ends the scheduler is told and asked who may start next, so the window slides with the healthy
count. The engine emits events and never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.engine.host import EVENTS, HostJob, HostRun
from orchestrator.engine.remote import Probe, RemoteHost
from orchestrator.errors import HostError
from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    EventSink,
    HostUnreachable,
    TargetFinished,
    TargetStarted,
    ZoneBaking,
)
from orchestrator.install_plan import InstallPlan
from orchestrator.models.deployment_config import DeploymentConfig
from orchestrator.models.inventory import HostSpec
from orchestrator.models.results import (
    FAILED,
    IN_PROGRESS,
    SKIPPED,
    STOPPED,
    SUCCEEDED,
    Deployment,
    Diagnostics,
    LifecycleEvent,
    Target,
)
from orchestrator.planning import Health, RevisionState, Scheduler, TargetInfo, TargetState
from orchestrator.revision import Revision
from orchestrator.transport.base import Transport

HOOK_GRACE_SECONDS = 10.0


@dataclass
class Rollout:
    """Everything a deployment needs, validated before any host is contacted."""

    deployment: Deployment
    revision: Revision
    plan: InstallPlan
    config: DeploymentConfig
    hosts: Sequence[HostSpec]
    hook_grace: float = HOOK_GRACE_SECONDS
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def new_target(host: HostSpec) -> Target:
    return Target(
        host.name, host.address, [LifecycleEvent(name) for name in EVENTS], zone=host.zone
    )


def target_info(host: HostSpec, probe: Probe | None, sha256: str) -> TargetInfo:
    """CodeDeploy's health classes from what the host recorded of its last deployment."""
    if probe is None or probe.last_deployment is None:
        return TargetInfo(host.name, Health.NEW, RevisionState.UNKNOWN, host.zone)
    _, status, last_sha = probe.last_deployment
    health = Health.HEALTHY if status == SUCCEEDED else Health.UNHEALTHY
    revision = (
        RevisionState.CURRENT if last_sha == sha256 and status == SUCCEEDED else RevisionState.OLD
    )
    return TargetInfo(host.name, health, revision, host.zone)


class DeploymentRunner:
    def __init__(self, rollout: Rollout, transport: Transport, sinks: Sequence[EventSink]) -> None:
        self.rollout = rollout
        self.transport = transport
        self.sinks = list(sinks)
        self.deployment = rollout.deployment
        self.remotes: dict[str, RemoteHost] = {}
        self.probes: dict[str, Probe] = {}

    def emit(self, event: object) -> None:
        for sink in self.sinks:
            sink(event)  # type: ignore[arg-type]

    async def run(self) -> Deployment:
        deployment = self.deployment
        deployment.status = IN_PROGRESS
        deployment.create_time = deployment.create_time or time.time()
        for host in self.rollout.hosts:
            deployment.targets[host.name] = new_target(host)
        self.emit(DeploymentStarted(deployment))
        try:
            unreachable = await self._connect_all()
            scheduler = Scheduler(
                self.rollout.config,
                [
                    target_info(h, self.probes.get(h.name), self.rollout.revision.sha256)
                    for h in self.rollout.hosts
                ],
            )
            for name, message in unreachable.items():
                scheduler.record_failure(name)
                self._mark_unreachable(name, message)
            await self._drive(scheduler)
            self._conclude(scheduler)
        finally:
            await self._close_all()
        deployment.complete_time = time.time()
        self.emit(DeploymentFinished(deployment))
        return deployment

    async def _connect_all(self) -> dict[str, str]:
        group_id = self.deployment.group_id

        async def connect(host: HostSpec) -> str | None:
            try:
                session = await self.transport.connect(host)
                remote = RemoteHost(session, host, group_id)
                self.remotes[host.name] = remote
                self.probes[host.name] = await remote.probe()
            except HostError as exc:
                return exc.message
            return None

        results = await asyncio.gather(*(connect(h) for h in self.rollout.hosts))
        return {
            h.name: m for h, m in zip(self.rollout.hosts, results, strict=True) if m is not None
        }

    def _mark_unreachable(self, name: str, message: str) -> None:
        target = self.deployment.targets[name]
        target.status = FAILED
        first, *rest = target.events
        first.status = FAILED
        first.start_time = first.end_time = time.time()
        first.diagnostics = Diagnostics("UnknownError", message=f"host unreachable: {message}")
        for event in rest:
            event.status = SKIPPED
        self.emit(HostUnreachable(self.deployment, target, message))

    async def _reconnect(self, remote: RemoteHost) -> RemoteHost:
        with contextlib.suppress(HostError):
            await remote.session.close()
        session = await self.transport.connect(remote.spec)
        fresh = RemoteHost(session, remote.spec, remote.group_id)
        self.remotes[remote.spec.name] = fresh
        return fresh

    async def _drive(self, scheduler: Scheduler) -> None:
        job = HostJob(
            self.deployment,
            self.rollout.revision,
            self.rollout.plan,
            self.emit,
            self.rollout.hook_grace,
            self._reconnect,
        )
        running: dict[asyncio.Task[bool], str] = {}
        while not scheduler.finished:
            if self.rollout.stop.is_set():
                scheduler.stop("MANUAL_STOP", "the deployment was stopped")
            for name in scheduler.start_next():
                target = self.deployment.targets[name]
                self.emit(TargetStarted(self.deployment, target))
                run = HostRun(job, target, self.remotes[name], self.probes[name])
                running[asyncio.create_task(run.run(), name=f"host {name}")] = name
            if not running:
                if scheduler.awaiting_next_zone:
                    await self._bake(scheduler)
                    continue
                break
            stop_wait = asyncio.create_task(self.rollout.stop.wait())
            done, _ = await asyncio.wait([*running, stop_wait], return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            for task in done:
                if task is stop_wait:
                    continue
                name = running.pop(task)
                succeeded = _result(task)
                target = self.deployment.targets[name]
                if succeeded:
                    scheduler.record_success(name)
                else:
                    target.status = FAILED
                    scheduler.record_failure(name)
                self.emit(TargetFinished(self.deployment, target))
                await self._close(name)

    async def _bake(self, scheduler: Scheduler) -> None:
        seconds = scheduler.bake_seconds()
        self.emit(ZoneBaking(self.deployment, scheduler.current_zone or "", seconds))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.rollout.stop.wait(), timeout=seconds)
        scheduler.begin_next_zone()

    def _conclude(self, scheduler: Scheduler) -> None:
        outcome = scheduler.outcome()
        for name, state in scheduler.states.items():
            target = self.deployment.targets[name]
            if state is TargetState.SKIPPED:
                target.status = SKIPPED
                for event in target.events:
                    event.status = SKIPPED
        if outcome.error_code == "MANUAL_STOP":
            self.deployment.status = STOPPED
        else:
            self.deployment.status = SUCCEEDED if outcome.succeeded else FAILED
        self.deployment.error_code = outcome.error_code
        self.deployment.error_message = None if outcome.succeeded else outcome.message

    async def _close(self, name: str) -> None:
        remote = self.remotes.pop(name, None)
        if remote is not None:
            with contextlib.suppress(HostError):
                await remote.session.close()

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._close(name) for name in list(self.remotes)))


def _result(task: asyncio.Task[bool]) -> bool:
    """A host task's result; an unexpected error fails that host, not the deployment."""
    exception = task.exception()
    return False if exception is not None else task.result()
