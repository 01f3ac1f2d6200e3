"""The wave driver: starts hosts as the scheduler allows and tells it as each one ends.

Hosts run as tasks; each time one ends the scheduler is told and asked who may start next, so the
window slides with the healthy count. Between zones it bakes. It polls the stop sources whenever
it wakes (a host ended, or a source rang): a stop starts nothing new and skips pending hosts,
a forced one terminates the hooks that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from orchestrator.engine.fleet import Fleet
from orchestrator.engine.host import HostJob, HostRun
from orchestrator.engine.stopping import Stopping
from orchestrator.events import EventSink, TargetFinished, TargetStarted, ZoneBaking
from orchestrator.models.results import Status
from orchestrator.planning import Scheduler


class Waves:
    def __init__(
        self,
        scheduler: Scheduler,
        job: HostJob,
        fleet: Fleet,
        stopping: Stopping,
        emit: EventSink,
    ) -> None:
        self.scheduler = scheduler
        self.job = job
        self.fleet = fleet
        self.stopping = stopping
        self.emit = emit
        self.deployment = job.deployment
        self.runs: dict[str, HostRun] = {}
        self.touched: set[str] = set()  # hosts that ran at least one event

    async def drive(self, resumed: dict[str, str]) -> None:
        """Until the scheduler is done. ``resumed``: hosts to continue, at the event each was in."""
        running: dict[asyncio.Task[bool], str] = {}
        try:
            await self._drive(resumed, running)
        finally:
            # Only on an error of the engine itself: no host task is left behind unawaited.
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _drive(self, resumed: dict[str, str], running: dict[asyncio.Task[bool], str]) -> None:
        scheduler = self.scheduler
        for name, event in resumed.items():
            running[self._start(name, event)] = name
        forced = False
        while not scheduler.finished:
            if self.stopping.check():
                scheduler.stop(*self.stopping.reason())
            if self.stopping.forced and not forced:
                forced = True
                await self._abort_running()
            for name in scheduler.start_next():
                running[self._start(name)] = name
            if not running:
                if scheduler.awaiting_next_zone:
                    await self._bake()
                    continue
                break
            # Wake up for a host that ends, or for a stop source with something to say.
            woken = asyncio.create_task(self.stopping.control.woken())
            await asyncio.wait([*running, woken], return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            for task in [task for task in running if task.done()]:
                self._finished(running.pop(task), _result(task))

    def _finished(self, name: str, succeeded: bool) -> None:
        target = self.deployment.targets[name]
        if succeeded:
            self.scheduler.record_success(name)
        else:
            target.status = Status.FAILED
            self.scheduler.record_failure(name)
        self.emit(TargetFinished(self.deployment, target))

    def _start(self, name: str, resume_at: str | None = None) -> asyncio.Task[bool]:
        target = self.deployment.targets[name]
        self.touched.add(name)
        self.emit(TargetStarted(self.deployment, target))
        run = HostRun(self.job, target, self.fleet.remotes[name], self.fleet.probes[name])
        self.runs[name] = run
        return asyncio.create_task(run.run(resume_at), name=f"host {name}")

    async def _abort_running(self) -> None:
        aborts = [run.abort() for run in self.runs.values() if run.busy()]
        await asyncio.gather(*aborts, return_exceptions=True)

    async def _bake(self) -> None:
        """The zone's monitoring time before the next zone starts; a stop ends it."""
        seconds = self.scheduler.bake_seconds()
        self.emit(ZoneBaking(self.deployment, self.scheduler.current_zone or "", seconds))
        deadline = time.monotonic() + seconds
        while not self.stopping.check() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.control.woken(), timeout=left)
        self.scheduler.begin_next_zone()


def _result(task: asyncio.Task[bool]) -> bool:
    """A host task's result; an unexpected error fails that host, not the deployment."""
    exception = task.exception()
    return False if exception is not None else task.result()
