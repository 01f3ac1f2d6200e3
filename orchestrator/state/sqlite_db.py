"""The SQLite history's tables, and opening its file for writing or for reading only.

Opening for writing creates the file (0600, with its -wal and -shm files) and the tables, and
adds the columns later versions added. Opening for reading creates nothing: a missing or empty
file reads as an empty history, and a store on a filesystem this process cannot write is read
as it stands. ``overlay_events`` gives a running deployment's document its newest events.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from orchestrator.errors import StoreError
from orchestrator.models.results import Status
from orchestrator.private_paths import private_file, tighten

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
# Added after the first release: files made before it lack the column until opened for writing.
ADDED_COLUMNS = (("deployments", "pid_start", "TEXT"),)
# The schema's version, kept in ``schema_version``: 1 is the tables above with every column of
# ADDED_COLUMNS (which opening for writing adds: a file without the table is version 0, and
# becomes 1 when opened for writing). A newer orchestrator that changes the tables raises it,
# and this one then refuses the file rather than misread it.
SCHEMA_VERSION = 1


def connect_writing(path: Path) -> sqlite3.Connection:
    # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's
    # mode; ones an older version left wider are tightened.
    private_file(path)
    for suffix in ("-wal", "-shm"):
        tighten(path.with_name(path.name + suffix))
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        _add_missing_columns(db)
        _versioned(db, path)
    except BaseException:
        db.close()
        raise
    return db


def connect_reading(path: Path) -> sqlite3.Connection:
    if not path.exists():
        return _empty()  # nothing recorded yet: nothing to show, and nothing to create
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        found = tables(db)
    except sqlite3.OperationalError as exc:
        db.close()
        if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            raise
        # A WAL store on a filesystem this process cannot write (no -shm file to share):
        # nobody can be writing it either, so it is read as it stands.
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
        try:
            found = tables(db)
        except BaseException:
            db.close()
            raise
    if "deployments" not in found:
        db.close()
        return _empty()  # an empty file: a store never written
    try:
        _refuse_newer(db, path)
    except BaseException:
        db.close()
        raise
    return db


def tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(db: sqlite3.Connection, table: str = "deployments") -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def overlay_events(db: sqlite3.Connection, document: dict[str, Any]) -> None:
    """A running deployment's document is saved now and then; its events, as they happen."""
    rows = db.execute(
        "SELECT host, event, record FROM lifecycle_events WHERE deployment_id = ?",
        (document["deploymentId"],),
    ).fetchall()
    overlay(document, rows)


def overlay(document: dict[str, Any], rows: Iterable[tuple[str, str, str]]) -> None:
    """``document`` with the event records ``rows`` (host, event, JSON record) in place of its
    own (any store's: PostgreSQL's too)."""
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


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in ADDED_COLUMNS:
        if column not in columns(db, table):
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it meanwhile
                    raise


def schema_version(db: sqlite3.Connection) -> int:
    """The version its ``schema_version`` table records; 0 for a file without one."""
    if "schema_version" not in tables(db):
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _refuse_newer(db: sqlite3.Connection, path: Path) -> int:
    """Its version; a ``StoreError`` for one newer than this orchestrator knows."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise StoreError(
            path,
            "cannot be used",
            RuntimeError(
                f"its schema is version {version}, newer than this orchestrator knows "
                f"({SCHEMA_VERSION})"
            ),
            "upgrade orchestrator to one that knows it, or point --state elsewhere",
        )
    return version


def _versioned(db: sqlite3.Connection, path: Path) -> None:
    if _refuse_newer(db, path) < SCHEMA_VERSION:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))


def _empty() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    return db
