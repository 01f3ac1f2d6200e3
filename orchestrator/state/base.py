"""The Store seam: what the engine, the API and the command line ask of the deployment history.

A ``Store`` records deployments and their events (it is an event sink), reads them back as the
result models (``models/results.py``), carries the requests of ``orchestrator stop`` to the
process that runs a deployment, says which process that is, and hands out the group locks that
keep one deployment per group active. ``open_store`` picks the backend from ``--state``'s scheme
(``state/location.py``): SQLite (``state/sqlite.py``), the default, or PostgreSQL
(``state/postgres.py``), shared by controllers on many machines. Nothing outside ``state/`` names
a backend; another one is a module that implements these two protocols and a scheme that
``open_store`` maps to it.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, NamedTuple, Protocol

from orchestrator.errors import StoreURLError
from orchestrator.hostproto.holder import LockHolder
from orchestrator.state.location import state_location

if TYPE_CHECKING:
    from orchestrator.errors import StoreError
    from orchestrator.events import Event
    from orchestrator.models.results import Deployment
    from orchestrator.state.process import ProcessIdentity


class RecordedStop(NamedTuple):
    """What ``orchestrator stop`` asked of a deployment."""

    rollback: bool
    force: bool
    requested: float = 0.0  # when (time.time()): a request made again is a new one


class Runner(NamedTuple):
    """The process that runs (or ran) a deployment, and the machine it runs on."""

    process: ProcessIdentity
    machine: str

    def runs_here(self) -> bool:
        """It runs on this machine and is still alive (the very process, not one that got its
        pid since: ``state/process.py``)."""
        return self.machine == socket.gethostname() and self.process.alive()


class LogEntry(NamedTuple):
    """One lifecycle event's output, as the history keeps it."""

    host: str
    event: str
    output: str


class GroupLock(Protocol):
    """The controllers' half of "one active deployment per group" (the hosts hold the other
    half, ``hostproto/programs/lock.sh``). Its holder is a ``hostproto.holder.LockHolder``."""

    def acquire(self, deployment_id: str, wait: float | None = None) -> None:
        """Take it, waiting up to ``wait`` seconds; ``LockHeld`` naming the holder if taken."""
        ...

    def holder(self) -> LockHolder | None:
        """Who holds it now, or None when it is free."""
        ...

    def release(self) -> None:
        """Let it go (a no-op when not held); a holder that dies lets it go too."""
        ...

    def lost(self) -> StoreError | None:
        """Why a held lock is no longer held (a database connection that died), else None.
        Cheap (no I/O): polled between lifecycle events."""
        ...


class Store(Protocol):
    """A deployment history. Its errors are ``StoreError`` naming it and what to do."""

    @property
    def location(self) -> str:
        """Where it is, for messages: a file, or a URL without its password."""
        ...

    @property
    def label(self) -> str:
        """What it is, for an event sink's failure: ``the history store /path``."""
        ...

    @property
    def shared(self) -> bool:
        """Controllers on other machines use it too: ``stop`` reaches theirs through it."""
        ...

    def close(self) -> None: ...

    # -- recording --------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """As an event sink: save what the event changed (the backend's own errors are raised
        as they are; the engine reports them as the store's write failure)."""
        ...

    def save(self, deployment: Deployment) -> None:
        """Record the deployment as it stands, with the process that runs it (this one)."""
        ...

    # -- reading ---------------------------------------------------------------------------------

    def get(self, deployment_id: str | None = None) -> Deployment | None:
        """One deployment, the most recent when no id is given. One still InProgress has its
        events as recorded so far, and is ``interrupted`` when its process is gone from this
        machine."""
        ...

    def history(
        self, application: str | None = None, group: str | None = None, limit: int = 20
    ) -> list[Deployment]:
        """The deployments (of the application and group, when given), newest first."""
        ...

    def last_successful(
        self, application: str, group: str, *, before: str | None = None
    ) -> Deployment | None:
        """The group's newest Succeeded deployment (created before deployment ``before``)."""
        ...

    def logs(
        self, deployment_id: str, host: str | None = None, event: str | None = None
    ) -> list[LogEntry]:
        """Its events' outputs (those not empty), in host and lifecycle order."""
        ...

    # -- stopping a deployment that another process runs ----------------------------------------

    def request_stop(self, deployment_id: str, *, rollback: bool, force: bool) -> None: ...

    def stop_request(self, deployment_id: str) -> RecordedStop | None:
        """What ``orchestrator stop`` asked, if it asked anything."""
        ...

    def mark_stopped(self, deployment_id: str, message: str) -> None:
        """Record an interrupted deployment (its process is gone) as Stopped (MANUAL_STOP)."""
        ...

    def runner(self, deployment_id: str) -> Runner | None:
        """The process recorded as running the deployment, if the history holds it."""
        ...

    def controller_alive(self, deployment_id: str) -> bool | None:
        """Whether the deployment's process still runs: None when it ran on another machine
        (this one cannot tell) or the history does not hold it."""
        ...

    # -- one active deployment per group ---------------------------------------------------------

    def group_lock(self, application: str, group: str, group_id: str) -> GroupLock:
        """The group's lock among the controllers that share this store."""
        ...


def open_store(url: str | None, *, readonly: bool = False) -> Store:
    """The store ``--state`` names (None: the default, a SQLite file in the user state dir).
    ``readonly``: for commands that only read, which then also work on a store they cannot write
    and create nothing. ``StoreURLError`` for a scheme no backend serves, before anything is
    created."""
    location = state_location(url)
    # Each backend is imported only when used: a server's client library costs every command.
    if location.scheme == "sqlite":
        from orchestrator.state.sqlite import SqliteStore  # noqa: PLC0415

        return SqliteStore(location.history, state_dir=location.directory, readonly=readonly)
    if location.scheme == "postgresql" and location.url is not None:
        try:
            from orchestrator.state.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreURLError(
                f"{location.display}: PostgreSQL stores need psycopg: "
                "pip install 'orchestrator[postgresql]'"
            ) from exc
        return PostgresStore(location.url)
    raise AssertionError(f"state_location accepted {location.scheme!r}, which has no backend")
