"""The deployment history: every deployment's document and every event's output, in SQLite.

WAL mode, so ``status`` and ``history`` from another terminal read while a rollout writes. The
store is an event sink: it saves the document when a deployment starts, at most once a second
while hosts finish (so a crash leaves a recent record), and when it ends; it saves each lifecycle
event's output as the event ends (its last OUTPUT_CAP_BYTES, ``models/results.py``). With each
document it records which process runs the deployment (``state/process.py``).

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
from typing import Any, Concatenate, ParamSpec, TypeVar

from orchestrator.errors import StoreError
from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    TargetFinished,
)
from orchestrator.models.results import Deployment, Status
from orchestrator.private_paths import private_file, tighten
from orchestrator.state.location import state_location
from orchestrator.state.process import ProcessIdentity

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    group_name TEXT NOT NULL,
    status TEXT NOT NULL,
    create_time REAL NOT NULL,
    complete_time REAL,
    pid INTEGER,
    machine TEXT,
    document TEXT NOT NULL,
    pid_start TEXT
);
CREATE INDEX IF NOT EXISTS deployments_by_group
    ON deployments (application, group_name, create_time);
CREATE TABLE IF NOT EXISTS stop_requests (
    deployment_id TEXT PRIMARY KEY,
    rollback INTEGER NOT NULL,
    force INTEGER NOT NULL,
    requested REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lifecycle_events (
    deployment_id TEXT NOT NULL,
    host TEXT NOT NULL,
    event TEXT NOT NULL,
    record TEXT NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (deployment_id, host, event)
);
"""
SAVE_INTERVAL = 1.0
# Added after the first release: files made before it lack the column until opened for writing.
ADDED_COLUMNS = (("deployments", "pid_start", "TEXT"),)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(
    doing: str,
) -> Callable[
    [Callable[Concatenate[HistoryStore, _P], _R]], Callable[Concatenate[HistoryStore, _P], _R]
]:
    """A method whose SQLite and OS errors become a ``StoreError`` (``doing``: what failed)."""

    def wrap(
        method: Callable[Concatenate[HistoryStore, _P], _R],
    ) -> Callable[Concatenate[HistoryStore, _P], _R]:
        @functools.wraps(method)
        def guarded(store: HistoryStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with store.guard(doing):
                return method(store, *args, **kwargs)

        return guarded

    return wrap


def process_runs_orchestrator(controller: ProcessIdentity) -> bool:
    """Whether the process recorded as a deployment's controller still runs: that pid with that
    start time, not whatever process got its pid since (``state/process.py``)."""
    return controller.alive()


def store_path(state: str | None) -> Path:
    """``--state``: the history store's file (``state/location.py`` parses it)."""
    return state_location(state).history


class HistoryStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and create) the store; ``readonly``: for commands that only read it, which then
        work on a store they cannot write (a read-only file, directory or filesystem)."""
        self.path = path
        self.label = f"the history store {path}"
        self._last_save = 0.0
        self._controller = ProcessIdentity.current()
        with self.guard("cannot be opened"):
            self._db = self._connect_reading() if readonly else self._connect()

    def _connect(self) -> sqlite3.Connection:
        # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's
        # mode; ones an older version left wider are tightened.
        private_file(self.path)
        for suffix in ("-wal", "-shm"):
            tighten(self.path.with_name(self.path.name + suffix))
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            _add_missing_columns(db)
        except BaseException:
            db.close()
            raise
        return db

    def _connect_reading(self) -> sqlite3.Connection:
        if not self.path.exists():
            return _empty()  # nothing recorded yet: nothing to show, and nothing to create
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, isolation_level=None)
        try:
            tables = _tables(db)
        except sqlite3.OperationalError as exc:
            db.close()
            if exc.sqlite_errorcode & 0xFF not in (
                sqlite3.SQLITE_CANTOPEN,
                sqlite3.SQLITE_READONLY,
            ):
                raise
            # A WAL store on a filesystem this process cannot write (no -shm file to share):
            # nobody can be writing it either, so it is read as it stands.
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
            try:
                tables = _tables(db)
            except BaseException:
                db.close()
                raise
        if "deployments" not in tables:
            db.close()
            return _empty()  # an empty file: a store never written
        return db

    @classmethod
    def open(cls, state: str | None, *, readonly: bool = False) -> HistoryStore:
        return cls(store_path(state), readonly=readonly)

    def close(self) -> None:
        self._db.close()

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

    # -- writing (as an event sink) --------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        # As a sink, SQLite's own errors: the engine reports them as the store's write failure.
        if isinstance(event, DeploymentStarted | DeploymentFinished):
            self._save(event.deployment)
        elif isinstance(event, LifecycleEventStarted | LifecycleEventFinished):
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
        elif (
            isinstance(event, TargetFinished | HostUnreachable)
            and time.monotonic() - self._last_save >= SAVE_INTERVAL
        ):
            self._save(event.deployment)

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
        """Record an interrupted deployment as Stopped (its process is gone)."""
        document = self.get(deployment_id)
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
    def stop_request(self, deployment_id: str) -> tuple[bool, bool] | None:
        """(rollback, force) asked by ``orchestrator stop``, if anything was asked."""
        row = self._db.execute(
            "SELECT rollback, force FROM stop_requests WHERE deployment_id = ?", (deployment_id,)
        ).fetchone()
        return None if row is None else (bool(row[0]), bool(row[1]))

    # -- reading ---------------------------------------------------------------------------------

    @_guarded("cannot be read")
    def runner(self, deployment_id: str) -> tuple[ProcessIdentity, str] | None:
        """The process that ran or runs the deployment, and the machine it ran on."""
        start = "pid_start" if "pid_start" in _columns(self._db) else "NULL"
        row = self._db.execute(
            f"SELECT pid, {start}, machine FROM deployments WHERE id = ?",  # noqa: S608
            (deployment_id,),
        ).fetchone()
        if row is None:
            return None
        return ProcessIdentity(int(row[0]), row[1]), str(row[2])

    def controller_alive(self, deployment_id: str) -> bool | None:
        """Whether the deployment's controller still runs: the one place that says so. None when
        it ran on another machine (this one cannot tell) or the history does not hold it."""
        runner = self.runner(deployment_id)
        if runner is None or runner[1] != socket.gethostname():
            return None
        return process_runs_orchestrator(runner[0])

    @_guarded("cannot be read")
    def last_successful(
        self, application: str, group: str, *, before: str | None = None
    ) -> dict[str, Any] | None:
        """The newest Succeeded deployment of the group (older than ``before``, if given)."""
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
        return None if row is None else dict(json.loads(row[0]))

    @_guarded("cannot be read")
    def get(self, deployment_id: str | None = None) -> dict[str, Any] | None:
        """One deployment's document; the most recent one when no id is given. A deployment still
        InProgress whose process is gone from this machine is marked ``interrupted``."""
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
            self._overlay_events(document)
            if self._process_gone(document["deploymentId"]):
                document["interrupted"] = True
        return document

    def _overlay_events(self, document: dict[str, Any]) -> None:
        """A running deployment's document is saved now and then; its events, as they happen."""
        rows = self._db.execute(
            "SELECT host, event, record FROM lifecycle_events WHERE deployment_id = ?",
            (document["deploymentId"],),
        ).fetchall()
        latest = {(host, event): json.loads(record) for host, event, record in rows}
        for target in document.get("targets", []):
            events = target["lifecycleEvents"]
            for index, event in enumerate(events):
                record = latest.get((target["host"], event["lifecycleEventName"]))
                if record is not None:
                    events[index] = record
            if target["status"] == Status.PENDING and any(
                e["status"] != Status.PENDING for e in events
            ):
                target["status"] = Status.IN_PROGRESS.value

    def _process_gone(self, deployment_id: str) -> bool:
        return self.controller_alive(deployment_id) is False

    @_guarded("cannot be read")
    def history(
        self,
        application: str | None = None,
        group: str | None = None,
        limit: int = 20,
        *,
        targets: bool = False,
    ) -> list[dict[str, Any]]:
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
        documents = []
        for (text,) in rows:
            document = json.loads(text)
            if not targets:
                document.pop("targets", None)
            documents.append(document)
        return documents

    @_guarded("cannot be read")
    def logs(
        self, deployment_id: str, host: str | None = None, event: str | None = None
    ) -> list[tuple[str, str, str]]:
        """(host, event, output) rows in host and lifecycle order."""
        rows = self._db.execute(
            "SELECT host, event, output FROM lifecycle_events WHERE deployment_id = ? "
            "AND output != '' AND (? IS NULL OR host = ?) AND (? IS NULL OR event = ?) "
            "ORDER BY rowid",
            (deployment_id, host, host, event, event),
        ).fetchall()
        return [(str(h), str(e), str(o)) for h, e, o in rows]


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(db: sqlite3.Connection, table: str = "deployments") -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in ADDED_COLUMNS:
        if column not in _columns(db, table):
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it meanwhile
                    raise


def _empty() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    return db
