"""What the history holds, and stopping a deployment that another process runs.

``status``, ``history`` and ``logs`` only read the history store (no inventory, no pydantic
models, no SSH). ``stop`` asks a running deployment's process to stop, as `orchestrator stop`
does; ``request_stop`` and ``wait_stopped`` are its two halves, for a caller that reports between
them.
"""

from __future__ import annotations

import signal
import socket
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Literal

from orchestrator.api.settings import Settings
from orchestrator.errors import InvalidRequest, NotInHistory
from orchestrator.models.results import Deployment, Status
from orchestrator.state.base import LogEntry, open_store

STOP_POLL = 0.2


def status(deployment_id: str | None = None, *, settings: Settings | None = None) -> Deployment:
    """One deployment (the latest when no id is given), per host and lifecycle event; one that
    is InProgress with its process gone is marked ``interrupted``. ``NotInHistory`` if none."""
    with closing(open_store((settings or Settings()).state, readonly=True)) as store:
        deployment = store.get(deployment_id)
    if deployment is None:
        named = f"deployment {deployment_id}" if deployment_id else "deployment"
        raise NotInHistory(f"no {named} in the history at {store.location}")
    return deployment


def history(
    application: str | None = None,
    group: str | None = None,
    limit: int = 20,
    *,
    settings: Settings | None = None,
) -> list[Deployment]:
    """Past deployments, newest first."""
    with closing(open_store((settings or Settings()).state, readonly=True)) as store:
        return store.history(application, group, limit)


def logs(
    deployment_id: str,
    host: str | None = None,
    event: str | None = None,
    *,
    settings: Settings | None = None,
) -> list[LogEntry]:
    """(host, lifecycle event, output) of a deployment, in host and lifecycle order."""
    with closing(open_store((settings or Settings()).state, readonly=True)) as store:
        if store.get(deployment_id) is None:
            raise NotInHistory(f"no deployment {deployment_id} in the history at {store.location}")
        return store.logs(deployment_id, host, event)


@dataclass(frozen=True)
class StopRequested:
    """How a stop request went: ``asked`` (its process was signalled, or reads the request within
    about a second), ``interrupted`` (its
    process was gone: recorded as Stopped at once) or ``ended`` (it ended meanwhile)."""

    outcome: Literal["asked", "interrupted", "ended"]
    pid: int


def request_stop(
    deployment_id: str,
    *,
    rollback: bool = False,
    force: bool = False,
    settings: Settings | None = None,
) -> StopRequested:
    """Ask a running deployment to stop: one on this machine, or with a shared store
    (PostgreSQL) one on any machine (``InvalidRequest`` when it does not run, or runs on another
    machine of a store that is not shared)."""
    with closing(open_store((settings or Settings()).state)) as store:
        deployment = store.get(deployment_id)
        if deployment is None:
            raise NotInHistory(f"no deployment {deployment_id} in the history at {store.location}")
        if deployment.status != Status.IN_PROGRESS:
            raise InvalidRequest(
                f"deployment {deployment_id} is not running: it {deployment.status}"
            )
        runner = store.runner(deployment_id)
        if runner is None:  # its record went away meanwhile
            raise NotInHistory(f"no deployment {deployment_id} in the history at {store.location}")
        controller, machine = runner
        pid = controller.pid
        if machine != socket.gethostname():
            if not store.shared:
                raise InvalidRequest(f"deployment {deployment_id} runs on {machine}: stop it there")
            # A shared store (PostgreSQL): its controller reads the request within about a
            # second; a pid on another machine is never signalled from here.
            if deployment.interrupted:
                store.mark_stopped(deployment_id, "stopped after its orchestrator process was gone")
                return StopRequested("interrupted", pid)
            store.request_stop(deployment_id, rollback=rollback, force=force)
            return StopRequested("asked", pid)
        if not controller.alive():
            store.mark_stopped(deployment_id, "stopped after its orchestrator process was gone")
            return StopRequested("interrupted", pid)
        store.request_stop(deployment_id, rollback=rollback, force=force)
        # Only the very process recorded (its pid and start time), never another that got its pid,
        # and only one that catches SIGUSR1 (the command line's handler): its default action
        # would end a Python program running the deployment through the API. That one reads the
        # store about once a second instead.
        if controller.catches(signal.SIGUSR1):
            signalled = controller.send(signal.SIGUSR1)
        else:
            signalled = controller.start is not None and controller.alive()
        if not signalled and controller.start is not None:
            return StopRequested("ended", pid)  # its own conclusion records the deployment
        if not signalled:
            raise InvalidRequest(
                f"deployment {deployment_id}'s process {pid} cannot be told apart from another "
                "process with its pid (an orchestrator from before start times were recorded): "
                "stop it with Ctrl-C or SIGTERM where it runs"
            )
        return StopRequested("asked", pid)


def wait_stopped(
    deployment_id: str, wait_seconds: float, *, settings: Settings | None = None
) -> Status | None:
    """Its status once no longer InProgress, or None if it still is after ``wait_seconds``."""
    with closing(open_store((settings or Settings()).state)) as store:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            current = store.get(deployment_id)
            if current is not None and current.status != Status.IN_PROGRESS:
                return current.status
            time.sleep(STOP_POLL)  # another process concludes; bounded by wait_seconds
        return None


def stop(
    deployment_id: str,
    *,
    rollback: bool = False,
    force: bool = False,
    wait_seconds: float = 600,
    settings: Settings | None = None,
) -> Status | None:
    """``request_stop`` then ``wait_stopped``: the deployment's status once stopped (``Stopped``,
    or how it ended meanwhile), None if it is still stopping after ``wait_seconds``."""
    requested = request_stop(deployment_id, rollback=rollback, force=force, settings=settings)
    if requested.outcome == "interrupted":
        return Status.STOPPED
    return wait_stopped(deployment_id, wait_seconds, settings=settings)
