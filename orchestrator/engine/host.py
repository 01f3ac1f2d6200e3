"""One host's lifecycle: its steps in order, each recorded, the first failure skipping the rest.

The steps are data (``engine/steps.py``): ApplicationStop runs the last successful install's
scripts (a no-op on a first deployment); DownloadBundle uploads the bundle unless the host
already has it; Install executes the plan the controller computed; the hook events run the
revision's scripts under the host-side supervisor, which outlives a dropped connection: the
engine then reconnects and collects the result. Between steps it asks whether to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from orchestrator.engine.bundles import BundleDelivery
from orchestrator.engine.outcome import StepOutcome, command_outcome
from orchestrator.engine.remote import (
    HOOK_RESULT_SLACK,
    HookResult,
    Probe,
    RemoteHost,
)
from orchestrator.engine.steps import (
    AllowTraffic,
    BlockTraffic,
    DownloadBundle,
    Hooks,
    Install,
    PreviousHooks,
    Step,
)
from orchestrator.engine.traffic import LoadBalancer, TrafficCall
from orchestrator.errors import ConfigError, HostError, LoadBalancerError
from orchestrator.events import Event, LifecycleEventFinished, LifecycleEventStarted
from orchestrator.hostproto import install_stream
from orchestrator.install_plan import InstallPlan
from orchestrator.models.appspec import AppSpec, HookScript, parse_appspec
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.results import (
    Deployment,
    Diagnostics,
    LifecycleEvent,
    Status,
    Target,
    capped_output,
    log_tail,
)
from orchestrator.revision import Revision

RECONNECT_DELAY = 0.5


@dataclass(frozen=True)
class HostJob:
    """What every host of one deployment shares."""

    deployment: Deployment
    revision: Revision
    plan: InstallPlan
    steps: Mapping[str, Step]  # by the lifecycle event each is recorded as
    emit: Callable[[Event], None]
    hook_grace: float
    reconnect: Callable[[RemoteHost], Awaitable[RemoteHost]]
    stopping: Callable[[], bool] = lambda: False
    # Why this host's lock is no longer this deployment's (taken over), or None while it is.
    lock_lost: Callable[[str], str | None] = lambda host: None
    # The stop comes from a history that cannot be written (a full disk): its last record shows
    # the deployment in progress, so hosts it stopped are left as a crash would leave them, for
    # `rollout --resume` to complete, not recorded on the host as failed.
    unrecorded: Callable[[], bool] = lambda: False
    # stop --force: no hook starts from here on, and one being started is aborted on the host.
    forced: Callable[[], bool] = lambda: False
    balancer: LoadBalancer | None = None  # the group's, when its steps include traffic events
    rendered: Mapping[str, bytes] = field(default_factory=dict)  # host: its templates' tar
    # Hosts BlockTraffic took out of the load balancer and AllowTraffic has not put back: the
    # deployment names them at its end, since nothing else would tell the operator.
    out_of_balancer: set[str] = field(default_factory=set)
    delivery: BundleDelivery | None = None  # how DownloadBundle gets the bundle; None: pushed


class HostRun:
    def __init__(self, job: HostJob, target: Target, remote: RemoteHost, probe: Probe) -> None:
        self.job = job
        self.target = target
        self.remote = remote
        self.probe = probe
        self.current_hook: tuple[str, int] | None = None  # (event, script index) while one runs
        self.traffic: TrafficCall | None = None  # a load balancer call while it runs
        self.collecting = False  # resuming: a hook may have run, or still run, on the host

    @property
    def deployment_id(self) -> str:
        return self.job.deployment.deployment_id

    @property
    def archive(self) -> str:
        return f"{self.remote.deployment_dir(self.deployment_id)}/deployment-archive"

    async def run(self, resume_at: str | None = None) -> bool:
        """Run every event; True when the host succeeded. ``resume_at``: the event an interrupted
        deployment was in; those before it succeeded, its hooks are collected, not rerun."""
        self.target.status = Status.IN_PROGRESS
        succeeded = True
        self.collecting = resume_at is not None
        names = [event.name for event in self.target.events]
        done = names.index(resume_at) if resume_at in names else 0
        for event in self.target.events[:done]:
            if event.status in (Status.PENDING, Status.IN_PROGRESS):
                event.status = Status.SUCCEEDED  # the host got past it, so it succeeded
        stopped = False
        for event in self.target.events[done:]:
            lost = self.job.lock_lost(self.target.host) if succeeded else None
            if lost is not None:
                # Another deployment holds this host now: nothing more of ours runs here.
                succeeded = False
                self._fail_unstarted(event, lost)
                continue
            if succeeded and self.job.stopping():
                # A stop request: no new lifecycle event starts; this host did not finish.
                succeeded = False
                stopped = True
                event.diagnostics = Diagnostics(
                    LifecycleErrorCode.UNKNOWN_ERROR, message="not run: the deployment was stopped"
                )
            if not succeeded:
                event.status = Status.SKIPPED
                continue
            event.status = Status.IN_PROGRESS
            event.start_time = time.time()
            self.job.emit(LifecycleEventStarted(self.job.deployment, self.target, event))
            outcome = await self._step(event.name)
            event.end_time = time.time()
            event.status = Status.SUCCEEDED if outcome.ok else Status.FAILED
            event.diagnostics = outcome.diagnostics
            event.output = outcome.output
            event.warnings.extend(outcome.warnings)
            self.job.emit(LifecycleEventFinished(self.job.deployment, self.target, event))
            succeeded = outcome.ok or outcome.ignored_failure
        self.target.status = Status.SUCCEEDED if succeeded else Status.FAILED
        if stopped and self.job.unrecorded():
            return False
        # The outcome is recorded here whatever happens; the host may learn it only next time.
        # Not when the lock is lost: the host's records are the new holder's now.
        record = None if self.job.lock_lost(self.target.host) else self.target.status
        with contextlib.suppress(HostError):
            await self.remote.finish(self.deployment_id, record, self.job.revision.sha256)
        return succeeded

    def _fail_unstarted(self, event: LifecycleEvent, message: str) -> None:
        """``event`` failed without running, saying why."""
        event.status = Status.FAILED
        event.start_time = event.end_time = time.time()
        event.diagnostics = Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message)
        self.job.emit(LifecycleEventFinished(self.job.deployment, self.target, event))

    async def _step(self, event: str) -> StepOutcome:
        try:
            return await self._run_step(self.job.steps[event])
        except HostError as exc:
            return StepOutcome(
                False, Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=exc.message)
            )
        except Exception as exc:  # a bug must fail this host, visibly, not the deployment
            return StepOutcome(
                False,
                Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=f"internal error: {exc!r}"),
            )

    async def _run_step(self, step: Step) -> StepOutcome:
        match step:
            case Hooks():
                return await self._hooks(step.event, step.scripts, self.archive)
            case PreviousHooks():
                outcome = await self._previous_hooks(step.event)
                if not outcome.ok and self.job.deployment.ignore_application_stop_failures:
                    outcome.ignored_failure = True
                    outcome.warnings = (
                        *outcome.warnings,
                        "failure ignored (--ignore-application-stop-failures)",
                    )
                return outcome
            case DownloadBundle():
                return await self._download()
            case Install():
                return await self._install()
            case BlockTraffic():
                return await self._traffic(block=True)
            case AllowTraffic():
                return await self._traffic(block=False)
            case _:
                assert_never(step)

    async def _previous_hooks(self, event: str) -> StepOutcome:
        last = self.probe.last_successful
        if last is not None and self.probe.appspec_missing:
            message = f"did not find an AppSpec file in {last}/deployment-archive (last successful)"
            return StepOutcome(
                False, Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message)
            )
        if last is None or self.probe.old_appspec is None:
            return StepOutcome(True)  # first deployment of this group here: nothing to stop
        try:
            old = _previous_appspec(
                self.probe.old_appspec, f"{last}/deployment-archive/appspec.yml"
            )
        except ConfigError as exc:
            # As the agent with an unreadable appspec: this host's ApplicationStop fails (and
            # --ignore-application-stop-failures deploys past it); the other hosts go on.
            message = f"previous appspec: {exc}"
            return StepOutcome(
                False, Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message)
            )
        return await self._hooks(
            event, old.model.hooks.for_event(event), f"{last}/deployment-archive"
        )

    async def _download(self) -> StepOutcome:
        delivery = self.job.delivery or BundleDelivery(self.job.revision)
        result, notes = await delivery.download(self.remote, self.probe, self.deployment_id)
        outcome = command_outcome(result)
        outcome.warnings = notes
        return outcome

    async def _traffic(self, *, block: bool) -> StepOutcome:
        balancer = self.job.balancer
        if balancer is None:  # build_steps adds traffic steps only for a group with one
            raise LoadBalancerError("a traffic event without a load balancer")
        if self.job.forced():
            return TrafficCall.not_run(block)
        self.traffic = TrafficCall(balancer, self.remote.spec, block, self.job.out_of_balancer)
        try:
            return await self.traffic.run()
        finally:
            self.traffic = None

    async def _install(self) -> StepOutcome:
        rendered = self.job.rendered.get(self.target.host)
        if rendered is not None:
            placed = await self.remote.put_rendered(self.deployment_id, rendered)
            if not placed.ok:
                return command_outcome(placed)
        instructions = install_stream.encoded(self.job.plan)
        return command_outcome(await self.remote.install(self.deployment_id, instructions))

    async def _hooks(self, event: str, scripts: Sequence[HookScript], archive: str) -> StepOutcome:
        if not scripts:
            return StepOutcome(True)
        output = ""
        warnings: list[str] = []
        result: HookResult | None = None
        capped = False
        for index, script in enumerate(scripts):
            result = await self._hook(event, index, script, archive)
            output += f"Script - {script.location}\n"
            output += "".join(f"[stdout]{line}\n" for line in result.stdout.splitlines())
            output += "".join(f"[stderr]{line}\n" for line in result.stderr.splitlines())
            capped = capped or result.capped
            if result.warning:
                warnings.append(f"{script.location}: {result.warning}")
            if not result.ok:
                diagnostics = Diagnostics(
                    result.recorded_code, script.location, result.message, log_tail(output)
                )
                return StepOutcome(False, diagnostics, self._kept(output, capped), tuple(warnings))
        assert result is not None
        diagnostics = Diagnostics(
            LifecycleErrorCode.SUCCESS, scripts[-1].location, Status.SUCCEEDED, log_tail(output)
        )
        return StepOutcome(True, diagnostics, self._kept(output, capped), tuple(warnings))

    def _kept(self, output: str, capped: bool) -> str:
        """What the history keeps of a hook event's output; the host's log has all of it."""
        log = f"{self.remote.deployment_dir(self.deployment_id)}/logs/scripts.log"
        return capped_output(output, capped, f"the whole output is in {log} on {self.target.host}")

    def busy(self) -> bool:
        """A hook or a load balancer call runs now: what stop --force interrupts."""
        return self.current_hook is not None or self.traffic is not None

    async def abort(self) -> None:
        """stop --force: terminate the hook that runs now (its supervisor then reports it), or
        end the wait on the load balancer (up to its drain or health timeout otherwise)."""
        if self.traffic is not None:
            self.traffic.abort()
        if self.current_hook is not None:
            event, index = self.current_hook
            await self.remote.abort_hook(self.deployment_id, event, index, self.job.hook_grace)

    async def _hook(self, event: str, index: int, script: HookScript, archive: str) -> HookResult:
        if self.job.forced():
            # The force's abort went to the hooks running then; this one would run to its end.
            message = (
                f"Script at specified location: {script.location} was not run: "
                "the deployment was stopped with --force"
            )
            return HookResult(1, LifecycleErrorCode.SCRIPT_FAILED, message, "", "", "")
        self.current_hook = (event, index)
        try:
            return await self._run_or_collect(event, index, script, archive)
        finally:
            self.current_hook = None

    async def _run_or_collect(
        self, event: str, index: int, script: HookScript, archive: str
    ) -> HookResult:
        # A hook runs at most its timeout, then the grace before SIGKILL; its supervisor then
        # takes a moment to log and report. Nothing waits on it longer.
        longest = script.timeout + self.job.hook_grace + HOOK_RESULT_SLACK
        if self.collecting:
            collected = await self.remote.collect_hook(self.deployment_id, event, index, longest)
            if collected.started:
                return collected
            self.collecting = False  # from here on nothing ran before the interruption
        deployment = self.job.deployment
        env = {
            "APPLICATION_NAME": deployment.application,
            "DEPLOYMENT_GROUP_NAME": deployment.group,
            "BUNDLE_SHA256": self.job.revision.sha256,
        }
        if self.job.revision.commit:
            env["BUNDLE_COMMIT"] = self.job.revision.commit

        def start() -> Awaitable[HookResult]:
            return self.remote.run_hook(
                deployment_id=self.deployment_id,
                event=event,
                index=index,
                script=f"{archive}/{script.location}",
                location=script.location,
                timeout=script.timeout,
                runas=script.runas,
                archive=archive,
                grace=self.job.hook_grace,
                env=env,
            )

        try:
            return await start()
        except HostError:
            # The hook runs on under its supervisor: reconnect and collect its result, bounded by
            # the hook's own timeout plus the grace and the time a reconnect may take.
            deadline = time.monotonic() + longest
            return await self._collect(event, index, deadline, start)

    async def _collect(
        self,
        event: str,
        index: int,
        deadline: float,
        start: Callable[[], Awaitable[HookResult]],
    ) -> HookResult:
        while True:
            try:
                self.remote = await self.job.reconnect(self.remote)
                if self.job.forced():
                    # The force's abort may have gone to the connection that died.
                    await self.abort()
                within = max(deadline - time.monotonic(), HOOK_RESULT_SLACK)
                collected = await self.remote.collect_hook(self.deployment_id, event, index, within)
                if collected.started:
                    return collected
                # The start request did not reach the host (nothing claimed the hook there): sent
                # again. Had it reached it after all, the host finds its claim and the second
                # request waits for the first one's hook instead of running it again.
                return await start()
            except HostError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RECONNECT_DELAY)


@functools.lru_cache(maxsize=8)
def _previous_appspec(text: str, file: str) -> AppSpec:
    """Hosts deployed together hold the same previous appspec: parsed once, not once per host
    (measured: 20% of the controller's CPU in a 100-host rollout)."""
    return parse_appspec(text, file)
