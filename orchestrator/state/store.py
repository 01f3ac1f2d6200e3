"""The deployment history: every deployment's document and every event's output, in SQLite.

WAL mode, so ``status`` and ``history`` from another terminal read while a rollout writes. The
store is an event sink: it saves the document when a deployment starts, at most once a second
while hosts finish (so a crash leaves a recent record), and when it ends; it saves each lifecycle
event's output as the event ends (its last OUTPUT_CAP_BYTES, ``models/results.py``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    TargetFinished,
)
from orchestrator.models.results import Deployment
from orchestrator.private_paths import private_file, tighten
from orchestrator.state.location import state_location

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
    document TEXT NOT NULL
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


def process_runs_orchestrator(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"orchestrator" in command


def store_path(state: str | None) -> Path:
    """``--state``: the history store's file (``state/location.py`` parses it)."""
    return state_location(state).history


class HistoryStore:
    def __init__(self, path: Path) -> None:
        # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's
        # mode; ones an older version left wider are tightened.
        private_file(path)
        for suffix in ("-wal", "-shm"):
            tighten(path.with_name(path.name + suffix))
        self.path = path
        self.label = f"the history store {path}"
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._last_save = 0.0

    @classmethod
    def open(cls, state: str | None) -> HistoryStore:
        return cls(store_path(state))

    def close(self) -> None:
        self._db.close()

    # -- writing (as an event sink) --------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if isinstance(event, DeploymentStarted | DeploymentFinished):
            self.save(event.deployment)
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
            self.save(event.deployment)

    def save(self, deployment: Deployment) -> None:
        self._last_save = time.monotonic()
        self._db.execute(
            "INSERT OR REPLACE INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deployment.deployment_id,
                deployment.application,
                deployment.group,
                deployment.status,
                deployment.create_time,
                deployment.complete_time,
                os.getpid(),
                socket.gethostname(),
                json.dumps(deployment.to_document()),
            ),
        )

    def request_stop(self, deployment_id: str, *, rollback: bool, force: bool) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO stop_requests VALUES (?, ?, ?, ?)",
            (deployment_id, int(rollback), int(force), time.time()),
        )

    def mark_stopped(self, deployment_id: str, message: str) -> None:
        """Record an interrupted deployment as Stopped (its process is gone)."""
        document = self.get(deployment_id)
        if document is None:
            return
        document.pop("interrupted", None)
        document.update(
            status="Stopped",
            errorInformation={"code": "MANUAL_STOP", "message": message},
            completeTime=document.get("completeTime"),
        )
        self._db.execute(
            "UPDATE deployments SET status = 'Stopped', document = ? WHERE id = ?",
            (json.dumps(document), deployment_id),
        )

    def stop_request(self, deployment_id: str) -> tuple[bool, bool] | None:
        """(rollback, force) asked by ``orchestrator stop``, if anything was asked."""
        row = self._db.execute(
            "SELECT rollback, force FROM stop_requests WHERE deployment_id = ?", (deployment_id,)
        ).fetchone()
        return None if row is None else (bool(row[0]), bool(row[1]))

    # -- reading ---------------------------------------------------------------------------------

    def runner(self, deployment_id: str) -> tuple[int, str] | None:
        """(pid, machine) of the process that ran or runs the deployment."""
        row = self._db.execute(
            "SELECT pid, machine FROM deployments WHERE id = ?", (deployment_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

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
            "AND status = 'Succeeded' AND create_time < ? ORDER BY create_time DESC LIMIT 1",
            (application, group, newest),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

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
        if document["status"] == "InProgress":
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
            if target["status"] == "Pending" and any(e["status"] != "Pending" for e in events):
                target["status"] = "InProgress"

    def _process_gone(self, deployment_id: str) -> bool:
        runner = self.runner(deployment_id)
        if runner is None or runner[1] != socket.gethostname():
            return False  # another machine's: we cannot tell
        return not process_runs_orchestrator(runner[0])

    def history(
        self, application: str | None = None, group: str | None = None, limit: int = 20
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
            document.pop("targets", None)
            documents.append(document)
        return documents

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
