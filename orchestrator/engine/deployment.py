"""The fleet loop: connect, probe and lock every host, then let the scheduler decide who starts.

One connection per host for the whole deployment (opened under the transport's handshake cap).
Reading a host's state and taking the group's lock on it is one round trip; if another live
deployment holds any host's lock, nothing starts (``LockHeld``). A host that cannot be reached
is a failed target. Hosts run as tasks; each time one ends the scheduler is told and asked who
may start next, so the window slides with the healthy count. A stop request lets running events
finish (or, forced, terminates running hooks) and starts nothing new. The engine emits events and
never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from orchestrator.engine.host import EVENTS, HostJob, HostRun
from orchestrator.engine.remote import LockMode, LockReply, Probe, RemoteHost
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import MANUAL_STOP, Control, Stopping
from orchestrator.errors import HostError, LockHeld
from orchestrator.events import (
    Broadcast,
    DeploymentFinished,
    DeploymentStarted,
    EventSink,
    HostUnreachable,
    Notice,
    TargetFinished,
    TargetStarted,
    ZoneBaking,
)
from orchestrator.hostproto.replies import LockState
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import (
    FAILED,
    IN_PROGRESS,
    PENDING,
    SKIPPED,
    STOPPED,
    SUCCEEDED,
    Deployment,
    Diagnostics,
    LifecycleEvent,
    Target,
)
from orchestrator.planning import (
    Health,
    RevisionState,
    Scheduler,
    TargetInfo,
    TargetState,
    invalid_minimum,
)
from orchestrator.state.locks import describe
from orchestrator.transport.base import Transport


def new_target(host: HostSpec) -> Target:
    return Target(
        host.name,
        host.address or host.name,  # no address: ssh_config's HostName for the name decides
        [LifecycleEvent(name) for name in EVENTS],
        zone=host.zone,
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
    def __init__(
        self,
        rollout: Rollout,
        transport: Transport,
        sinks: Sequence[EventSink] | Broadcast,
        control: Control | None = None,
    ) -> None:
        self.rollout = rollout
        self.transport = transport
        self.emit = sinks if isinstance(sinks, Broadcast) else Broadcast(sinks)
        self.control = control or Control()
        self.deployment = rollout.deployment
        self.stopping = Stopping(self.control, self.deployment, self.emit)
        self.touched: set[str] = set()  # hosts that ran at least one event
        self.remotes: dict[str, RemoteHost] = {}
        self.probes: dict[str, Probe] = {}
        self.runs: dict[str, HostRun] = {}
        self.locked: set[str] = set()  # hosts whose lock this deployment took
        self.lost: dict[str, str] = {}  # hosts whose lock was taken over: why

    async def run(self) -> Deployment:
        """Run the deployment; ``LockHeld`` (nothing started, nothing recorded) if it is locked."""
        self.emit.listeners.append(self.stopping.fail)
        try:
            return await self._run()
        finally:
            self.emit.listeners.remove(self.stopping.fail)

    async def _run(self) -> Deployment:
        deployment = self.deployment
        try:
            if self._fails_before_contact():
                # The scheduler records the failure; no host is connected, probed or locked.
                unreachable: dict[str, str] = {}
                taken_over: dict[str, dict[str, str]] = {}
            else:
                unreachable, taken_over = await self._connect_all()
            deployment.status = IN_PROGRESS
            deployment.create_time = deployment.create_time or time.time()
            hosts = self._targets()
            self.emit(DeploymentStarted(deployment))
            for name, previous in taken_over.items():
                self.emit(
                    Notice(deployment, f"took over a stale lock held by {describe(previous)}", name)
                )
            scheduler = Scheduler(
                self.rollout.config,
                [
                    target_info(h, self.probes.get(h.name), self.rollout.revision.sha256)
                    for h in hosts
                ],
            )
            resumed = {}
            if self.rollout.resume:
                resumed = self._restore(scheduler, hosts)
                scheduler.resume_zones()
            for name, message in unreachable.items():
                if scheduler.states.get(name) is TargetState.PENDING:
                    scheduler.record_failure(name)
                    self._mark_unreachable(name, message)
            heartbeat = asyncio.create_task(self._heartbeat())
            try:
                await self._drive(scheduler, resumed)
            finally:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
            self._conclude(scheduler)
            if self.rollout.update_outdated_only and not hosts and self.deployment.targets:
                # Nothing outdated: every selected host already runs this revision.
                self.deployment.status = SUCCEEDED
                self.deployment.error_code = self.deployment.error_message = None
        finally:
            await self._release_and_close()
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

    async def _connect_all(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        group_id = self.deployment.group_id
        locks: dict[str, LockReply] = {}

        async def connect(host: HostSpec) -> str | None:
            try:
                session = await self.transport.connect(host)
                remote = RemoteHost(session, host, group_id)
                self.remotes[host.name] = remote
                probe, lock = await remote.probe_and_lock(
                    self.deployment.deployment_id, self.rollout.lock_ttl, self.rollout.lock_holder
                )
                self.probes[host.name] = probe
                if probe.missing_tools:
                    # The probe stopped before the lock: nothing on the host changed.
                    return (
                        f"the host lacks {', '.join(probe.missing_tools)}, which orchestrator "
                        "runs on every host (the README lists what hosts need)"
                    )
                if lock.state == LockState.FAILED:
                    # Not ours and nobody else's (a full disk on the host): a failed target.
                    error = lock.error or "unknown error"
                    return f"cannot take the deployment group's lock on the host: {error}"
                locks[host.name] = lock
            except HostError as exc:
                return f"host unreachable: {exc.message}"
            return None

        results = await asyncio.gather(*(connect(h) for h in self.rollout.hosts))
        for name, lock in list(locks.items()):
            left_over = lock.deployment or ""
            if not lock.ours and left_over and self.control.finished(left_over):
                with contextlib.suppress(HostError):
                    locks[name] = await self.remotes[name].take_over_lock(
                        self.deployment.deployment_id,
                        self.rollout.lock_ttl,
                        self.rollout.lock_holder,
                        left_over,
                    )
        held = {name: lock for name, lock in locks.items() if not lock.ours}
        if held:
            name, lock = sorted(held.items())[0]
            await self._release_and_close()
            raise LockHeld(
                f"deployment group {self.deployment.application}/{self.deployment.group} is locked "
                f"on {len(held)} host(s), {name} by {describe(lock.holder)}",
                lock.holder,
            )
        self.locked = set(locks)
        unreachable = {
            h.name: m for h, m in zip(self.rollout.hosts, results, strict=True) if m is not None
        }
        taken_over = {
            name: lock.holder for name, lock in locks.items() if lock.state == LockState.TOOK_OVER
        }
        return unreachable, taken_over

    def _targets(self) -> list[HostSpec]:
        """Every selected host is a target; with update-outdated-only, hosts already on the
        revision are recorded as Skipped and left out of the scheduler's count."""
        hosts = []
        for host in self.rollout.hosts:
            target = self.deployment.targets.setdefault(host.name, new_target(host))
            info = target_info(host, self.probes.get(host.name), self.rollout.revision.sha256)
            if self.rollout.update_outdated_only and info.revision is RevisionState.CURRENT:
                target.status = SKIPPED
                for event in target.events:
                    event.status = SKIPPED
                continue
            hosts.append(host)
        return hosts

    def _restore(self, scheduler: Scheduler, hosts: list[HostSpec]) -> dict[str, str]:
        """Resume: each host's state from what it reports (its last-deployment record and its
        ongoing-deployment marker), else from the history. Returns the hosts to continue, with
        the event each was in."""
        deployment_id = self.deployment.deployment_id
        resumed: dict[str, str] = {}
        self.emit(Notice(self.deployment, "resuming an interrupted deployment"))
        for host in hosts:
            target = self.deployment.targets[host.name]
            probe = self.probes.get(host.name)
            last = probe.last_deployment if probe else None
            if last is not None and last[0] == deployment_id:
                target.status = SUCCEEDED if last[1] == SUCCEEDED else FAILED
                for event in target.events:
                    if event.status in (IN_PROGRESS, PENDING) and target.status == SUCCEEDED:
                        event.status = SUCCEEDED
                scheduler.restore(host.name, TargetState(target.status))
            elif probe is not None and probe.ongoing_event is not None:
                scheduler.restore(host.name, TargetState.IN_PROGRESS)
                resumed[host.name] = probe.ongoing_event
            elif target.status in (SUCCEEDED, FAILED) and probe is None:
                scheduler.restore(host.name, TargetState(target.status))  # e.g. unreachable before
            else:
                target.status = PENDING
                for event in target.events:
                    event.status = PENDING
        return resumed

    def _mark_unreachable(self, name: str, message: str) -> None:
        target = self.deployment.targets[name]
        target.status = FAILED
        first, *rest = target.events
        first.status = FAILED
        first.start_time = first.end_time = time.time()
        first.diagnostics = Diagnostics("UnknownError", message=message)
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

    async def _drive(self, scheduler: Scheduler, resumed: dict[str, str]) -> None:
        job = HostJob(
            self.deployment,
            self.rollout.revision,
            self.rollout.plan,
            self.emit,
            self.rollout.hook_grace,
            self._reconnect,
            self.stopping.check,
            self.lost.get,
            lambda: self.stopping.failure is not None,
            lambda: self.stopping.check() and self.stopping.forced,
        )
        running: dict[asyncio.Task[bool], str] = {}
        try:
            await self._drive_hosts(scheduler, job, resumed, running)
        finally:
            # Only on an error of the engine itself: no host task is left behind unawaited.
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _drive_hosts(
        self,
        scheduler: Scheduler,
        job: HostJob,
        resumed: dict[str, str],
        running: dict[asyncio.Task[bool], str],
    ) -> None:
        for name, event in resumed.items():
            running[self._start(job, name, event)] = name
        forced = False
        while not scheduler.finished:
            if self.stopping.check():
                scheduler.stop(*self.stopping.reason())
            if self.stopping.forced and not forced:
                forced = True
                await self._abort_running_hooks()
            for name in scheduler.start_next():
                running[self._start(job, name)] = name
            if not running:
                if scheduler.awaiting_next_zone:
                    await self._bake(scheduler)
                    continue
                break
            # Wake up for a host that ends, or for a stop source with something to say.
            woken = asyncio.create_task(self.control.woken())
            await asyncio.wait([*running, woken], return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            for task in [task for task in running if task.done()]:
                name = running.pop(task)
                target = self.deployment.targets[name]
                if _result(task):
                    scheduler.record_success(name)
                else:
                    target.status = FAILED
                    scheduler.record_failure(name)
                self.emit(TargetFinished(self.deployment, target))

    def _start(self, job: HostJob, name: str, resume_at: str | None = None) -> asyncio.Task[bool]:
        target = self.deployment.targets[name]
        self.touched.add(name)
        self.emit(TargetStarted(self.deployment, target))
        run = HostRun(job, target, self.remotes[name], self.probes[name])
        self.runs[name] = run
        return asyncio.create_task(run.run(resume_at), name=f"host {name}")

    async def _abort_running_hooks(self) -> None:
        aborts = [run.abort_hook() for run in self.runs.values() if run.current_hook is not None]
        await asyncio.gather(*aborts, return_exceptions=True)

    async def _heartbeat(self) -> None:
        """Keep the host locks fresh so nobody takes them over while we run. Each host's beat is
        bounded by the interval, so a hung host never holds up the others'. A lock no longer ours
        (taken over) stops that host; a beat that fails or goes unanswered is said once per host."""
        interval = self.rollout.lock_ttl / 4
        told: set[tuple[str, str]] = set()
        while True:
            await asyncio.sleep(interval)
            names = [name for name in self.remotes if name in self.locked - self.lost.keys()]
            results = await asyncio.gather(*(self._beat(name, interval) for name in names))
            for name, result in zip(names, results, strict=True):
                if isinstance(result, LockReply) and result.state == LockState.LOST:
                    self._lose(name, result)
                    continue
                problem = self._heartbeat_problem(result, interval)
                if problem is not None and (name, problem[0]) not in told:
                    told.add((name, problem[0]))
                    self.emit(Notice(self.deployment, problem[1], name))

    async def _beat(self, name: str, timeout: float) -> LockReply | None:
        """One host's heartbeat; None when it did not answer in time. A connection that died
        is the host's lifecycle's business (it reconnects); its lock is refreshed again then."""
        try:
            return await asyncio.wait_for(
                self.remotes[name].lock(LockMode.HEARTBEAT, self.deployment.deployment_id), timeout
            )
        except TimeoutError:
            return None
        except HostError:
            return LockReply(LockState.UNREACHABLE)

    def _lose(self, name: str, lock: LockReply) -> None:
        holder = f" by {describe(lock.holder)}" if lock.deployment else ""
        self.lost[name] = (
            f"the deployment group's lock on this host was taken over{holder}: no further "
            "lifecycle event of this deployment runs here"
        )
        self.emit(Notice(self.deployment, self.lost[name], name))

    def _heartbeat_problem(self, lock: LockReply | None, interval: float) -> tuple[str, str] | None:
        """(kind, what to say) for a heartbeat that did not refresh the lock."""
        ttl = self.rollout.lock_ttl
        if lock is None:
            return "timeout", (
                f"the lock heartbeat got no answer within {interval:g} s (the other hosts' "
                f"heartbeats go on); after {ttl} s without one another deployment may take "
                "this host's lock over, and the next heartbeat that answers says so"
            )
        if lock.state == LockState.FAILED:
            return "failed", (
                f"cannot refresh the group's lock on this host: {lock.error or ''}; "
                f"after {ttl} s without one another deployment may take it over"
            )
        return None

    async def _bake(self, scheduler: Scheduler) -> None:
        seconds = scheduler.bake_seconds()
        self.emit(ZoneBaking(self.deployment, scheduler.current_zone or "", seconds))
        deadline = time.monotonic() + seconds
        while not self.stopping.check() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.control.woken(), timeout=left)
        scheduler.begin_next_zone()

    def _conclude(self, scheduler: Scheduler) -> None:
        outcome = scheduler.outcome()
        for name, state in scheduler.states.items():
            if state is TargetState.SKIPPED:
                target = self.deployment.targets[name]
                target.status = SKIPPED
                for event in target.events:
                    event.status = SKIPPED
        stopped = outcome.error_code == MANUAL_STOP or self.stopping.stopping
        self.deployment.status = STOPPED if stopped else SUCCEEDED if outcome.succeeded else FAILED
        if stopped:
            self.deployment.error_code, self.deployment.error_message = self.stopping.reason()
        else:
            self.deployment.error_code = outcome.error_code
            self.deployment.error_message = None if outcome.succeeded else outcome.message

    async def _release_and_close(self) -> None:
        async def release(name: str) -> None:
            remote = self.remotes.pop(name)
            released = None
            try:
                released = await remote.lock(LockMode.RELEASE, self.deployment.deployment_id)
            except HostError:
                # The connection died (the host's sshd, say): one fresh one to release the lock,
                # or the next deployment waits for the lock's TTL.
                with contextlib.suppress(HostError):
                    remote = await self._reconnect(remote)
                    self.remotes.pop(name, None)
                    released = await remote.lock(LockMode.RELEASE, self.deployment.deployment_id)
            if released is not None and released.state == LockState.FAILED:
                message = (
                    f"cannot release the group's lock on this host: {released.error}"
                    f"; the next deployment takes it over {self.rollout.lock_ttl} s after its "
                    "last heartbeat"
                )
                self.emit(Notice(self.deployment, message, name))
            with contextlib.suppress(HostError):
                await remote.session.close()

        await asyncio.gather(*(release(name) for name in list(self.remotes)))
        await self.transport.close()


def _result(task: asyncio.Task[bool]) -> bool:
    """A host task's result; an unexpected error fails that host, not the deployment."""
    exception = task.exception()
    return False if exception is not None else task.result()
