"""Stop sources: what may ask a running deployment to stop, and how the engine hears it.

A ``StopSource`` is polled between lifecycle events (by each host before it starts one) and
whenever the engine is woken; it answers with what was asked since its last poll. The sources
here are the operator's requests in this process (Ctrl-C, SIGTERM, ``DeploymentControl.stop``:
``OperatorStop``) and `orchestrator stop` from another process (its options in the history
store, read when SIGUSR1 says one is there, else about once a second: ``StoreStop``). Another
source (an alarm, say) is one more class with a ``poll``; whatever learns of a request between
polls calls ``Control.wake`` so the engine acts at once rather than at the next host's event.

``Stopping`` is one deployment's merged view of its sources: stopped or not, forced or not, a
rollback asked or not, and why (the reason it records). It tells the operator as it learns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import StoreError
from orchestrator.events import EventSink, Notice
from orchestrator.models.results import Deployment

if TYPE_CHECKING:
    from orchestrator.state.base import RecordedStop

MANUAL_STOP = "MANUAL_STOP"
ALARM_ACTIVE = "ALARM_ACTIVE"  # an alarm source's stop (integrations/alarm_watch.py)
INTERNAL_ERROR = "INTERNAL_ERROR"  # CodeDeploy's code; here: it could not record or report
STOPPED_MESSAGE = "the deployment was stopped"


@dataclass(frozen=True)
class StopRequest:
    """A source's request: stop (running hooks finish), or with ``force`` terminate them;
    ``rollback``: then roll back the hosts it updated. ``error_code`` and ``message`` are what
    the deployment records as why it stopped."""

    force: bool = False
    rollback: bool = False
    error_code: str = MANUAL_STOP
    message: str = STOPPED_MESSAGE


class StopSource(Protocol):
    def poll(self, deployment_id: str) -> StopRequest | None:
        """What was asked of ``deployment_id`` since the last poll, else None. Called between
        lifecycle events: cheap, no I/O unless something was asked."""
        ...


class OperatorStop:
    """Requests made in this process: Ctrl-C and SIGTERM (through the command line's handlers),
    ``DeploymentControl.stop``. Called in the event loop's thread."""

    def __init__(self) -> None:
        self._pending: list[StopRequest] = []

    def ask(self, *, force: bool = False, rollback: bool = False) -> None:
        self._pending.append(StopRequest(force=force, rollback=rollback))

    def poll(self, deployment_id: str) -> StopRequest | None:
        if not self._pending:
            return None
        pending, self._pending = self._pending, []
        # Asked again before the engine looked: that second request escalates, as it would have.
        force = len(pending) > 1 or any(request.force for request in pending)
        return StopRequest(force=force, rollback=any(request.rollback for request in pending))


STORE_READ_INTERVAL = 1.0  # how often StoreStop reads the store unasked, in seconds


class StopRequests(Protocol):
    """What ``StoreStop`` needs of the history store."""

    def stop_request(self, deployment_id: str) -> RecordedStop | None: ...


class StoreStop:
    """`orchestrator stop` from another process: it writes its options (rollback, force) to the
    history store, and sends SIGUSR1 to a process that catches it (the command line), whose
    handler calls ``ring``: the next poll reads them. A process that does not catch it (a
    program using the API) is not signalled: a poll reads the store when it has not for
    ``STORE_READ_INTERVAL`` seconds, and the API wakes the engine that often to poll. A request
    is taken once (told apart by when it was made), however many times it is read."""

    def __init__(self, store: StopRequests) -> None:
        self.store = store
        self._rung = False
        self._last_read = time.monotonic()
        self._taken: RecordedStop | None = None

    def ring(self) -> None:
        self._rung = True

    def poll(self, deployment_id: str) -> StopRequest | None:
        rung, now = self._rung, time.monotonic()
        if not rung and now - self._last_read < STORE_READ_INTERVAL:
            return None
        self._rung, self._last_read = False, now
        try:
            asked = self.store.stop_request(deployment_id)
        except StoreError:
            # Unreadable now: after a signal a plain stop; unasked, look again later.
            return StopRequest() if rung else None
        if asked is None:
            return StopRequest() if rung else None
        if asked == self._taken:
            return None  # read already (unasked, just before its signal came)
        self._taken = asked
        return StopRequest(force=asked.force, rollback=asked.rollback)


def _never_finished(deployment_id: str) -> bool:
    return False


class Control:
    """A release's control handle, beside its ``Rollout`` spec: the stop sources the engine
    polls, how one wakes it, and which deployments are known to have ended (whose host locks
    are left-overs). One per release: its deployment and the rollback it may trigger."""

    def __init__(
        self,
        sources: Iterable[StopSource] = (),
        finished: Callable[[str], bool] = _never_finished,
    ) -> None:
        self.sources = tuple(sources)
        self.finished = finished
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Poll the sources now (call it in the event loop's thread)."""
        self._woken.set()

    async def woken(self) -> None:
        await self._woken.wait()
        self._woken.clear()


class Stopping:
    """One deployment's stop state, from its sources and from its own failures. A request
    that comes while it is already stopping escalates to terminating running hooks."""

    def __init__(self, control: Control, deployment: Deployment, emit: EventSink) -> None:
        self.control = control
        self.deployment = deployment
        self.emit = emit
        self.request: StopRequest | None = None  # the first, whose reason is recorded
        self.forced = False
        self.rollback = False
        self.failure: str | None = None  # the engine stopped it: a sink that failed

    @property
    def stopping(self) -> bool:
        return self.request is not None or self.failure is not None

    def check(self) -> bool:
        """Poll every source; True once the deployment is stopping."""
        for source in self.control.sources:
            try:
                request = source.poll(self.deployment.deployment_id)
            except StoreError as exc:  # the history (or its group lock) went away
                if self.failure is None:
                    self.fail(str(exc))
                continue
            except Exception as exc:  # any source's bug: stop, as a sink's failure does
                if self.failure is None:  # said once, not at every poll
                    self.fail(f"stop source {type(source).__name__} failed ({exc!r})")
                continue
            if request is not None:
                self._take(request)
        return self.stopping

    def _take(self, request: StopRequest) -> None:
        self.rollback = self.rollback or request.rollback
        if self.stopping or request.force:
            self.forced = True  # a second request escalates
            message = "stopping: terminating running hooks"
        else:
            message = (
                "stopping: no new lifecycle event starts; running hooks finish "
                "(ask again to terminate them)"
            )
        self.request = self.request or request
        self.emit(Notice(self.deployment, message))

    def fail(self, message: str) -> None:
        """A sink could not take an event, or a stop source could not tell: stop as `orchestrator
        stop` does, saying why. What it stops could not be recorded: the history may still show
        it in progress."""
        self.failure = f"stopped: {message}"
        self.control.wake()
        self.emit(
            Notice(
                self.deployment,
                f"stopping: {message}; running hooks finish, no new lifecycle event starts",
            )
        )

    def reason(self) -> tuple[str, str]:
        """(error code, message) the stopped deployment records."""
        if self.failure is not None:
            return INTERNAL_ERROR, self.failure
        if self.request is not None:
            return self.request.error_code, self.request.message
        return MANUAL_STOP, STOPPED_MESSAGE
