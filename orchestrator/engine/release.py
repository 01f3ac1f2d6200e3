"""A release: the group's locks, the deployment, and the rollback it may trigger.

One active deployment per group: the store's group lock (for SQLite, a flock on this machine) is
taken first, then the engine takes the host locks; with ``lock_wait`` both are waited for. When
the deployment fails (or is stopped with a rollback asked for), and automatic rollback is on, a
new deployment of the group's last successful revision goes to the hosts the failed one touched:
creator ``rollback``, the two linked through ``rollbackInfo``. The revision comes from the local
bundle cache and is already on those hosts, so nothing is uploaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from socket import gethostname

from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import ALARM_ACTIVE, Control, OperatorStop, StopSource
from orchestrator.errors import ConfigError, LockHeld, RollbackImpossible
from orchestrator.events import Broadcast, EventSink
from orchestrator.install_plan import plan_for
from orchestrator.models.deployment_config import DeploymentRules
from orchestrator.models.results import Deployment, RevisionInfo, Status, new_deployment_id
from orchestrator.revision import Revision, build_revision
from orchestrator.state.base import GroupLock, Store
from orchestrator.templates import rendered_for
from orchestrator.transport.base import Transport

LOCK_RETRY_START = 0.5
LOCK_RETRY_MAX = 5.0


@dataclass
class ReleasePolicy:
    auto_rollback: bool = False
    rollback_on_failure: bool = True  # DEPLOYMENT_FAILURE among the group's events
    rollback_on_stop: bool = False  # DEPLOYMENT_STOP_ON_REQUEST, or stop --rollback
    rollback_on_alarm: bool = False  # DEPLOYMENT_STOP_ON_ALARM
    lock_wait: float = 0.0


@dataclass
class Release:
    deployment: Deployment
    rollback: Deployment | None = None
    notes: list[str] = field(default_factory=list)
    failure: str | None = None  # a sink that failed (a full disk): why the deployment stopped


def cached_revision(cache_dir: Path, sha256: str, source: str) -> Revision:
    """A revision deployed before, from the bundle cache (or rebuilt from its source)."""
    cached = cache_dir / f"{sha256}.tar"
    for candidate in (str(cached), source):
        if candidate == str(cached) and not cached.exists():
            continue
        try:
            revision = build_revision(candidate, cache_dir)
        except ConfigError:
            continue
        if revision.sha256 == sha256:
            return revision
    raise RollbackImpossible(
        f"revision {sha256[:12]} is not in the bundle cache {cache_dir} "
        f"and {source} no longer builds it"
    )


class LockWatch:
    """A stop source: the group lock this release holds, lost (``GroupLock.lost``)."""

    def __init__(self) -> None:
        self.lock: GroupLock | None = None
        self.failure: str | None = None

    def poll(self, deployment_id: str) -> None:
        lost = self.lock.lost() if self.lock is not None else None
        if lost is not None and self.failure is None:
            self.failure = str(lost)
            raise lost  # the engine stops the deployment, saying why (``Stopping.check``)


class Releaser:
    def __init__(
        self,
        store: Store,
        transport: Callable[[], Transport],
        sinks: Sequence[EventSink],
        cache_dir: Path,
        stops: Iterable[StopSource] = (),
    ) -> None:
        self.store = store
        self.transport = transport
        self.sinks = Broadcast(sinks)
        self.cache_dir = cache_dir
        self.current: Rollout | None = None
        self.requests = OperatorStop()
        self.watch = LockWatch()
        self.control = Control([self.requests, self.watch, *stops], self._finished)

    # -- control from signal handlers and `orchestrator stop` ------------------------------------

    def request_stop(self, *, force: bool = False, rollback: bool = False) -> None:
        """Stop the running deployment (in the event loop's thread): running hooks finish, or
        with ``force`` (or asked again) are terminated; ``rollback``: then roll it back."""
        self.requests.ask(force=force, rollback=rollback)
        self.control.wake()

    # -- running ---------------------------------------------------------------------------------

    async def run(self, rollout: Rollout, policy: ReleasePolicy) -> Release:
        deployment = rollout.deployment
        lock = self.store.group_lock(deployment.application, deployment.group, deployment.group_id)
        await asyncio.to_thread(lock.acquire, deployment.deployment_id, policy.lock_wait)
        self.watch.lock = lock
        try:
            deadline = time.monotonic() + policy.lock_wait
            runner = await self._deploy(rollout, deadline)
            release = Release(runner.deployment)
            if self._wants_rollback(runner, policy):
                release.rollback = await self._roll_back(rollout, runner.touched, release)
            release.failure = self.sinks.failure or self.watch.failure
            return release
        finally:
            self.watch.lock = None
            lock.release()

    async def _deploy(self, rollout: Rollout, deadline: float) -> DeploymentRunner:
        """Run it; while another deployment holds host locks, retry until the deadline."""
        delay = LOCK_RETRY_START
        self.current = rollout
        while True:
            runner = DeploymentRunner(rollout, self.transport(), self.sinks, self.control)
            try:
                await runner.run()
                return runner
            except LockHeld:
                if time.monotonic() + delay > deadline or runner.stopping.check():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, LOCK_RETRY_MAX)

    def _finished(self, deployment_id: str) -> bool:
        """A deployment the history holds that has ended, or whose controller is gone from
        this machine (its process, by pid and start time): its host locks are left-overs,
        taken over without waiting out their heartbeat. A controller on another machine that
        no longer holds the group's lock is not enough: its lock's connection may have died
        while it lives and its hooks run, so its host locks are taken over only once their
        heartbeat is stale."""
        recorded = self.store.get(deployment_id)
        if recorded is None:
            return False
        if recorded.status != Status.IN_PROGRESS:
            return True
        runner = self.store.runner(deployment_id)
        return recorded.interrupted and runner is not None and runner.machine == gethostname()

    def _wants_rollback(self, runner: DeploymentRunner, policy: ReleasePolicy) -> bool:
        deployment = runner.deployment
        if self.sinks.failure is not None or self.watch.failure is not None:
            return False  # a rollback could be neither recorded nor followed either
        if deployment.status == Status.FAILED:
            return policy.auto_rollback and policy.rollback_on_failure
        if deployment.status == Status.STOPPED:
            alarm = deployment.error_code == ALARM_ACTIVE
            on_stop = policy.rollback_on_alarm if alarm else policy.rollback_on_stop
            return runner.stopping.rollback or (policy.auto_rollback and on_stop)
        return False

    async def _roll_back(
        self, failed: Rollout, changed: set[str], release: Release
    ) -> Deployment | None:
        """Roll back the hosts the failed deployment ``changed`` (ran an event on)."""
        deployment = failed.deployment
        previous = self.store.last_successful(
            deployment.application, deployment.group, before=deployment.deployment_id
        )
        touched = [host for host in failed.hosts if host.name in changed]
        try:
            if previous is None:
                raise RollbackImpossible(
                    "no earlier successful deployment of this group to roll back to"
                )
            if not touched:
                raise RollbackImpossible("the failed deployment changed no host")
            revision = cached_revision(
                self.cache_dir, previous.revision.sha256, previous.revision.source
            )
            rollback = self.rollback_deployment(
                deployment, previous, revision, f"automatic rollback of {deployment.deployment_id}"
            )
            # The inventory's vars may have changed since that revision was deployed.
            rendered = rendered_for(revision, touched, rollback)
        except (RollbackImpossible, ConfigError) as exc:
            deployment.rollback_info = {"rollbackMessage": f"no rollback: {exc}"}
            self.store.save(deployment)
            release.notes.append(f"no rollback: {exc}")
            return None
        deployment.rollback_info = {
            "rollbackDeploymentId": rollback.deployment_id,
            "rollbackMessage": f"rolling back to {previous.deployment_id} "
            f"on {len(touched)} host(s)",
        }
        # The failed deployment's own rules, recorded: a resumed rollback keeps them too.
        rollback.rules = DeploymentRules(failed.config, failed.hook_grace).to_document()
        self.store.save(deployment)
        rollout = Rollout(
            rollback,
            revision,
            plan_for(revision, rollback.file_exists_behavior),
            failed.config,
            touched,
            failed.hook_grace,
            lock_holder=failed.lock_holder,
            group=failed.group,
            load_balancer=failed.load_balancer,
            rendered=rendered,
        )
        done = (await self._deploy(rollout, time.monotonic())).deployment
        deployment.rollback_info["rollbackStatus"] = done.status
        self.store.save(deployment)
        return done

    @staticmethod
    def rollback_deployment(
        failed: Deployment, previous: Deployment, revision: Revision, message: str
    ) -> Deployment:
        return Deployment(
            deployment_id=new_deployment_id(),
            application=failed.application,
            group=failed.group,
            group_id=failed.group_id,
            revision=RevisionInfo(
                previous.revision.source,
                revision.sha256,
                revision.size,
                revision.kind,
                revision.commit,
            ),
            config_name=failed.config_name,
            creator="rollback",
            description=f"rollback to the revision of {previous.deployment_id}",
            file_exists_behavior=previous.file_exists_behavior,
            ignore_application_stop_failures=failed.ignore_application_stop_failures,
            rollback_info={
                "rollbackTriggeringDeploymentId": failed.deployment_id,
                "rollbackMessage": message,
            },
        )
