"""One deployment from start to end: its hosts connected and locked, its targets, the waves,
the heartbeat, its conclusion.

``DeploymentRunner`` composes the parts that each have one job: ``Fleet`` (``engine/fleet.py``:
connections and host locks), ``Heartbeat`` (keeping the locks fresh), ``Waves`` (the scheduler's
windows of hosts, zones, bakes) and ``Stopping`` (what its stop sources ask). Here: which hosts
are targets, how a resumed deployment picks up what the hosts report, and how it ends. A host
that cannot be reached is a failed target. The engine emits events and never prints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from orchestrator.engine.bundles import BundleDelivery
from orchestrator.engine.fleet import Fleet
from orchestrator.engine.heartbeat import Heartbeat
from orchestrator.engine.host import HostJob
from orchestrator.engine.remote import Probe
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.steps import BlockTraffic, Step, build_steps
from orchestrator.engine.stopping import Control, Stopping
from orchestrator.engine.waves import Waves
from orchestrator.events import (
    Broadcast,
    DeploymentFinished,
    DeploymentStarted,
    EventSink,
    HostUnreachable,
    Notice,
)
from orchestrator.hostproto.holder import LockHolder
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Deployment, Diagnostics, LifecycleEvent, Status, Target
from orchestrator.planning import (
    Health,
    RevisionState,
    Scheduler,
    TargetInfo,
    invalid_minimum,
)
from orchestrator.transport.base import Transport


def new_target(host: HostSpec, steps: Sequence[Step]) -> Target:
    return Target(
        host.name,
        host.address or host.name,  # no address: ssh_config's HostName for the name decides
        [LifecycleEvent(step.event) for step in steps],
        zone=host.zone,
    )


def target_info(host: HostSpec, probe: Probe | None, sha256: str) -> TargetInfo:
    """CodeDeploy's health classes from what the host recorded of its last deployment."""
    if probe is None or probe.last_deployment is None:
        return TargetInfo(host.name, Health.NEW, RevisionState.UNKNOWN, host.zone)
    last = probe.last_deployment
    health = Health.HEALTHY if last.status == Status.SUCCEEDED else Health.UNHEALTHY
    current = last.sha256 == sha256 and last.status == Status.SUCCEEDED
    revision = RevisionState.CURRENT if current else RevisionState.OLD
    return TargetInfo(host.name, health, revision, host.zone)


class DeploymentRunner:
    def __init__(
        self,
        rollout: Rollout,
        transport: Transport,
        sinks: Sequence[EventSink] | Broadcast,
        control: Control | None = None,
    ) -> None:
        self.rollout = rollout
        self.emit = sinks if isinstance(sinks, Broadcast) else Broadcast(sinks)
        self.control = control or Control()
        self.deployment = rollout.deployment
        self.steps = build_steps(rollout.revision.appspec, rollout.group)
        self.stopping = Stopping(self.control, self.deployment, self.emit)
        self.fleet = Fleet(rollout, transport, self.control, self.emit)
        factory = rollout.load_balancer
        balanced = any(isinstance(step, BlockTraffic) for step in self.steps)
        self.balancer = factory(transport) if factory is not None and balanced else None
        self.touched: set[str] = set()  # hosts that ran at least one event
        self.out_of_balancer: set[str] = set()  # see HostJob.out_of_balancer
        self.delivery = BundleDelivery(rollout.revision, rollout.bundle_store, self._notice)

    async def run(self) -> Deployment:
        """Run the deployment; ``LockHeld`` (nothing started, nothing recorded) if it is locked."""
        self.emit.listeners.append(self.stopping.fail)
        try:
            return await self._run()
        finally:
            self.emit.listeners.remove(self.stopping.fail)
            if self.balancer is not None:
                await self.balancer.close()

    async def _run(self) -> Deployment:
        deployment = self.deployment
        try:
            unreachable: dict[str, str] = {}
            taken_over: dict[str, LockHolder] = {}
            if not self._fails_before_contact():
                unreachable, taken_over = await self.fleet.connect_all()
            # else the scheduler records the failure; no host is connected, probed or locked.
            deployment.status = Status.IN_PROGRESS
            deployment.create_time = deployment.create_time or time.time()
            hosts = self._targets()
            self.emit(DeploymentStarted(deployment))
            for name, previous in taken_over.items():
                message = f"took over a stale lock held by {previous.describe()}"
                self.emit(Notice(deployment, message, name))
            scheduler, resumed = self._schedule(hosts, unreachable)
            # The upload to the bundle store, when a host lacks the bundle, runs in a thread
            # from here; DownloadBundle waits for it.
            self.delivery.prepare(
                self.fleet.probes[h.name] for h in hosts if h.name in self.fleet.probes
            )
            await self._drive(scheduler, resumed)
            self._conclude(scheduler)
            if self.rollout.update_outdated_only and not hosts and deployment.targets:
                # Nothing outdated: every selected host already runs this revision.
                deployment.status = Status.SUCCEEDED
                deployment.error_code = deployment.error_message = None
        finally:
            await self.delivery.close()
            await self.fleet.release_and_close()
        deployment.complete_time = time.time()
        self.emit(DeploymentFinished(deployment))
        return deployment

    def _fails_before_contact(self) -> bool:
        """A minimum the selection can never keep. Not with --update-outdated-only or a resume:
        there what the hosts report decides which hosts count."""
        rollout = self.rollout
        if rollout.update_outdated_only or rollout.resume:
            return False
        return invalid_minimum(rollout.config, len(rollout.hosts)) is not None

    def _targets(self) -> list[HostSpec]:
        """Every selected host is a target; with update-outdated-only, hosts already on the
        revision are recorded as Skipped and left out of the scheduler's count."""
        hosts = []
        for host in self.rollout.hosts:
            target = self.deployment.targets.setdefault(host.name, new_target(host, self.steps))
            info = target_info(host, self.fleet.probes.get(host.name), self.rollout.revision.sha256)
            if self.rollout.update_outdated_only and info.revision is RevisionState.CURRENT:
                target.status = Status.SKIPPED
                for event in target.events:
                    event.status = Status.SKIPPED
                continue
            hosts.append(host)
        return hosts

    def _schedule(
        self, hosts: list[HostSpec], unreachable: dict[str, str]
    ) -> tuple[Scheduler, dict[str, str]]:
        """The scheduler over ``hosts``, the unreachable ones failed; resuming, the hosts to
        continue with the event each was in."""
        sha256 = self.rollout.revision.sha256
        scheduler = Scheduler(
            self.rollout.config,
            [target_info(h, self.fleet.probes.get(h.name), sha256) for h in hosts],
        )
        resumed = {}
        if self.rollout.resume:
            resumed = self._restore(scheduler, hosts)
            scheduler.resume_zones()
        for name, message in unreachable.items():
            if scheduler.states.get(name) is Status.PENDING:
                scheduler.record_failure(name)
                self._mark_unreachable(name, message)
        return scheduler, resumed

    def _restore(self, scheduler: Scheduler, hosts: list[HostSpec]) -> dict[str, str]:
        """Resume: each host's state from what it reports (its last-deployment record and its
        ongoing-deployment marker), else from the history. Returns the hosts to continue, with
        the event each was in."""
        deployment_id = self.deployment.deployment_id
        resumed: dict[str, str] = {}
        self.emit(Notice(self.deployment, "resuming an interrupted deployment"))
        for host in hosts:
            target = self.deployment.targets[host.name]
            probe = self.fleet.probes.get(host.name)
            last = probe.last_deployment if probe else None
            if last is not None and last.deployment_id == deployment_id:
                target.status = (
                    Status.SUCCEEDED if last.status == Status.SUCCEEDED else Status.FAILED
                )
                for event in target.events:
                    if (
                        event.status in (Status.IN_PROGRESS, Status.PENDING)
                        and target.status == Status.SUCCEEDED
                    ):
                        event.status = Status.SUCCEEDED
                scheduler.restore(host.name, target.status)
            elif probe is not None and probe.ongoing_event is not None:
                scheduler.restore(host.name, Status.IN_PROGRESS)
                resumed[host.name] = probe.ongoing_event
            elif target.status in (Status.SUCCEEDED, Status.FAILED) and probe is None:
                scheduler.restore(host.name, target.status)  # e.g. unreachable before
            else:
                target.status = Status.PENDING
                for event in target.events:
                    event.status = Status.PENDING
        return resumed

    def _mark_unreachable(self, name: str, message: str) -> None:
        target = self.deployment.targets[name]
        target.status = Status.FAILED
        first, *rest = target.events
        first.status = Status.FAILED
        first.start_time = first.end_time = time.time()
        first.diagnostics = Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message)
        for event in rest:
            event.status = Status.SKIPPED
        self.emit(HostUnreachable(self.deployment, target, message))

    async def _drive(self, scheduler: Scheduler, resumed: dict[str, str]) -> None:
        """The waves, with the locks' heartbeat beside them."""
        waves = Waves(scheduler, self._job(), self.fleet, self.stopping, self.emit)
        self.touched = waves.touched
        heartbeat = asyncio.create_task(Heartbeat(self.fleet, self.emit).run())
        try:
            await waves.drive(resumed)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        if self.out_of_balancer:
            names = ", ".join(sorted(self.out_of_balancer))
            message = (
                f"left out of the load balancer (BlockTraffic ran, AllowTraffic did not "
                f"succeed): {names}"
            )
            self.emit(Notice(self.deployment, message))

    def _job(self) -> HostJob:
        stopping = self.stopping
        return HostJob(
            self.deployment,
            self.rollout.revision,
            self.rollout.plan,
            {step.event: step for step in self.steps},
            self.emit,
            self.rollout.hook_grace,
            self.fleet.reconnect,
            stopping=stopping.check,
            lock_lost=self.fleet.lost.get,
            unrecorded=lambda: stopping.failure is not None,
            forced=lambda: stopping.check() and stopping.forced,
            balancer=self.balancer,
            rendered=self.rollout.rendered,
            out_of_balancer=self.out_of_balancer,
            delivery=self.delivery,
        )

    def _notice(self, message: str, host: str | None) -> None:
        self.emit(Notice(self.deployment, message, host))

    def _conclude(self, scheduler: Scheduler) -> None:
        outcome = scheduler.outcome()
        for name, state in scheduler.states.items():
            if state is Status.SKIPPED:
                target = self.deployment.targets[name]
                target.status = Status.SKIPPED
                for event in target.events:
                    event.status = Status.SKIPPED
        stopped = self.stopping.stopping
        self.deployment.status = (
            Status.STOPPED if stopped else Status.SUCCEEDED if outcome.succeeded else Status.FAILED
        )
        if stopped:
            self.deployment.error_code, self.deployment.error_message = self.stopping.reason()
        else:
            self.deployment.error_code = outcome.error_code
            self.deployment.error_message = None if outcome.succeeded else outcome.message
