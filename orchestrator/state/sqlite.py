"""The deployment history in SQLite: every deployment's document and every event's output.

WAL mode, so ``status`` and ``history`` from another terminal read while a rollout writes. The
store is an event sink: it saves the document when a deployment starts, at most once a second
while hosts finish (so a crash leaves a recent record), and when it ends; it saves each lifecycle
event's output as the event ends (its last OUTPUT_CAP_BYTES, ``models/results.py``). With each
document it records which process runs the deployment (``state/process.py``). Its group locks are
flocks in the state directory (``state/locks.py``). The tables: ``state/sqlite_db.py``.

Every SQLite or OS error is raised as ``StoreError`` naming the file and what to do about it:
a corrupt or read-only store is an operator's problem to fix, not a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, assert_never

from orchestrator.errors import StoreError
from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
    TargetFinished,
    TargetStarted,
    ZoneBaking,
)
from orchestrator.models.results import Deployment, Status
from orchestrator.state.base import LogEntry, RecordedStop, Runner
from orchestrator.state.location import state_location
from orchestrator.state.locks import LocalLock
from orchestrator.state.process import ProcessIdentity
from orchestrator.state.sqlite_db import columns, connect_reading, connect_writing, overlay_events

SAVE_INTERVAL = 1.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(
    doing: str,
) -> Callable[
    [Callable[Concatenate[SqliteStore, _P], _R]], Callable[Concatenate[SqliteStore, _P], _R]
]:
    """A method whose SQLite and OS errors become a ``StoreError`` (``doing``: what failed)."""

    def wrap(
        method: Callable[Concatenate[SqliteStore, _P], _R],
    ) -> Callable[Concatenate[SqliteStore, _P], _R]:
        @functools.wraps(method)
        def guarded(store: SqliteStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with store.guard(doing):
                return method(store, *args, **kwargs)

        return guarded

    return wrap


def store_path(state: str | None) -> Path:
    """``--state``: the SQLite file it names (``state/location.py`` parses it)."""
    return state_location(state).history


class SqliteStore:
    """A ``Store`` (``state/base.py``) in one SQLite file."""

    shared = False  # one machine's: its flocks exclude the controllers of this machine only

    def __init__(
        self, path: Path, *, state_dir: Path | None = None, readonly: bool = False
    ) -> None:
        """Open (and create) the store; ``readonly``: for commands that only read it, which then
        work on a store they cannot write (a read-only file, directory or filesystem), opened
        when first read. ``state_dir`` holds the group locks (default: the file's directory)."""
        self.path = path
        self.state_dir = path.parent if state_dir is None else state_dir
        self.label = f"the history store {path}"
        self._last_save = 0.0
        self._controller = ProcessIdentity.current()
        self._connection: sqlite3.Connection | None = None
        if not readonly:
            with self.guard("cannot be opened"):
                self._connection = connect_writing(path)

    @classmethod
    def open(cls, state: str | None, *, readonly: bool = False) -> SqliteStore:
        location = state_location(state)
        return cls(location.history, state_dir=location.directory, readonly=readonly)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            # Read-only: opened when first read, so `lock status` needs no readable history.
            with self.guard("cannot be opened"):
                self._connection = connect_reading(self.path)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()  # kept: using a closed store is an error, as in sqlite3

    @contextlib.contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """SQLite's and the OS's errors as a ``StoreError`` that says what to do."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self.path, doing, exc) from exc
        except json.JSONDecodeError as exc:
            # A record SQLite reads but that is not the JSON orchestrator wrote: edited or damaged.
            raise StoreError(self.path, doing, ValueError(f"a damaged record ({exc})")) from exc

    def group_lock(self, application: str, group: str, group_id: str) -> LocalLock:
        return LocalLock(self.state_dir, group_id, f"{application}/{group}")

    # -- writing (as an event sink) --------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        # As a sink, SQLite's own errors: the engine reports them as the store's write failure.
        match event:
            case DeploymentStarted() | DeploymentFinished():
                self._save(event.deployment)
            case LifecycleEventStarted() | LifecycleEventFinished():
                # One row per event as it starts and ends: cheap, and a crash loses nothing.
                self._db.execute(
                    "INSERT OR REPLACE INTO lifecycle_events VALUES (?, ?, ?, ?, ?)",
                    (
                        event.deployment.deployment_id,
                        event.target.host,
                        event.event.name,
                        json.dumps(event.event.to_document()),
                        event.event.output,
                    ),
                )
            case TargetFinished() | HostUnreachable():
                if time.monotonic() - self._last_save >= SAVE_INTERVAL:
                    self._save(event.deployment)
            case TargetStarted() | ZoneBaking() | Notice():
                pass  # what they say is in the next save's document, or not recorded at all
            case _:
                assert_never(event)

    @_guarded("cannot be written")
    def save(self, deployment: Deployment) -> None:
        self._save(deployment)

    def _save(self, deployment: Deployment) -> None:
        self._last_save = time.monotonic()
        self._db.execute(
            "INSERT OR REPLACE INTO deployments (id, application, group_name, status, "
            "create_time, complete_time, pid, machine, document, pid_start) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deployment.deployment_id,
                deployment.application,
                deployment.group,
                deployment.status.value,
                deployment.create_time,
                deployment.complete_time,
                self._controller.pid,
                socket.gethostname(),
                json.dumps(deployment.to_document()),
                self._controller.start,
            ),
        )

    @_guarded("cannot be written")
    def request_stop(self, deployment_id: str, *, rollback: bool, force: bool) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO stop_requests VALUES (?, ?, ?, ?)",
            (deployment_id, int(rollback), int(force), time.time()),
        )

    @_guarded("cannot be written")
    def mark_stopped(self, deployment_id: str, message: str) -> None:
        document = self._document(deployment_id)
        if document is None:
            return
        document.pop("interrupted", None)
        document.update(
            status=Status.STOPPED.value,
            errorInformation={"code": "MANUAL_STOP", "message": message},
            completeTime=document.get("completeTime"),
        )
        self._db.execute(
            "UPDATE deployments SET status = ?, document = ? WHERE id = ?",
            (Status.STOPPED.value, json.dumps(document), deployment_id),
        )

    @_guarded("cannot be read")
    def stop_request(self, deployment_id: str) -> RecordedStop | None:
        row = self._db.execute(
            "SELECT rollback, force, requested FROM stop_requests WHERE deployment_id = ?",
            (deployment_id,),
        ).fetchone()
        return None if row is None else RecordedStop(bool(row[0]), bool(row[1]), float(row[2]))

    # -- reading ---------------------------------------------------------------------------------

    @_guarded("cannot be read")
    def runner(self, deployment_id: str) -> Runner | None:
        start = "pid_start" if "pid_start" in columns(self._db) else "NULL"
        row = self._db.execute(
            f"SELECT pid, {start}, machine FROM deployments WHERE id = ?",  # noqa: S608
            (deployment_id,),
        ).fetchone()
        if row is None:
            return None
        return Runner(ProcessIdentity(int(row[0]), row[1]), str(row[2]))

    def controller_alive(self, deployment_id: str) -> bool | None:
        runner = self.runner(deployment_id)
        if runner is None or runner.machine != socket.gethostname():
            return None
        return runner.process.alive()

    @_guarded("cannot be read")
    def last_successful(
        self, application: str, group: str, *, before: str | None = None
    ) -> Deployment | None:
        newest = 1e18
        if before is not None:
            row = self._db.execute(
                "SELECT create_time FROM deployments WHERE id = ?", (before,)
            ).fetchone()
            newest = row[0] if row else newest
        row = self._db.execute(
            "SELECT document FROM deployments WHERE application = ? AND group_name = ? "
            "AND status = ? AND create_time < ? ORDER BY create_time DESC LIMIT 1",
            (application, group, Status.SUCCEEDED.value, newest),
        ).fetchone()
        return None if row is None else Deployment.from_document(json.loads(row[0]))

    @_guarded("cannot be read")
    def get(self, deployment_id: str | None = None) -> Deployment | None:
        document = self._document(deployment_id)
        return None if document is None else Deployment.from_document(document)

    def _document(self, deployment_id: str | None) -> dict[str, Any] | None:
        """The recorded document, with a running deployment's latest events and, when its
        process is gone from this machine, ``interrupted``."""
        if deployment_id is None:
            row = self._db.execute(
                "SELECT document FROM deployments ORDER BY create_time DESC LIMIT 1"
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT document FROM deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
        if row is None:
            return None
        document = dict(json.loads(row[0]))
        if document["status"] == Status.IN_PROGRESS:
            overlay_events(self._db, document)
            if self.controller_alive(document["deploymentId"]) is False:
                document["interrupted"] = True
        return document

    @_guarded("cannot be read")
    def history(
        self, application: str | None = None, group: str | None = None, limit: int = 20
    ) -> list[Deployment]:
        clauses, values = [], []
        if application:
            clauses.append("application = ?")
            values.append(application)
        if group:
            clauses.append("group_name = ?")
            values.append(group)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT document FROM deployments {where} ORDER BY create_time DESC LIMIT ?",  # noqa: S608
            (*values, limit),
        ).fetchall()
        return [Deployment.from_document(json.loads(text)) for (text,) in rows]

    @_guarded("cannot be read")
    def logs(
        self, deployment_id: str, host: str | None = None, event: str | None = None
    ) -> list[LogEntry]:
        rows = self._db.execute(
            "SELECT host, event, output FROM lifecycle_events WHERE deployment_id = ? "
            "AND output != '' AND (? IS NULL OR host = ?) AND (? IS NULL OR event = ?) "
            "ORDER BY rowid",
            (deployment_id, host, host, event, event),
        ).fetchall()
        return [LogEntry(str(h), str(e), str(o)) for h, e, o in rows]
