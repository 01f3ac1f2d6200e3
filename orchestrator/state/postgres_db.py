"""The PostgreSQL history's connections, tables and schema versions.

``connect`` opens a connection as libpq does (the URL, then PGPASSWORD, ~/.pgpass, PGSSLMODE and
the rest of libpq's environment), with TCP keepalives and a TCP user timeout so that a server or
network that vanishes is noticed in about half a minute rather than after the kernel's two
hours, and turns every failure into a ``StoreError`` naming ``host:port/database`` (never the
password).

The schema is versioned: ``schema_version`` holds one row, the version of the last migration
applied. A store is created on first use (``prepare``) under a transaction-level advisory lock, so
two controllers starting at once on an empty database do not both create it; an older schema
is refused until ``orchestrator state migrate`` upgrades it (``migrate``), and a newer one (a
newer orchestrator wrote it) is refused outright: this one would not know its records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
import psycopg.conninfo

from orchestrator.errors import StoreError
from orchestrator.state.location import scrubbed, without_password

# One advisory lock key for creating and migrating the schema (any 64-bit number no group's
# key is likely to hash to: group keys are hashes, this is a fixed word).
SCHEMA_LOCK_KEY = int.from_bytes(b"orchschm", "big", signed=True)
CONNECT_TIMEOUT = 10  # seconds, per address libpq tries
STATEMENT_TIMEOUT_MS = 15000
# A connection whose peer stops answering: probed after 10 s idle, every 5 s, dropped after 3
# unanswered probes; data unacknowledged for 30 s drops it too (``tcp_user_timeout``, in ms).
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,
}

# Each migration takes the schema from the version before it to its own (its index + 1).
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        # 1: the history, as SQLite keeps it (state/sqlite_db.py).
        """CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            application TEXT NOT NULL,
            group_name TEXT NOT NULL,
            status TEXT NOT NULL,
            create_time DOUBLE PRECISION NOT NULL,
            complete_time DOUBLE PRECISION,
            pid INTEGER,
            machine TEXT,
            document TEXT NOT NULL,
            pid_start TEXT
        )""",
        "CREATE INDEX deployments_by_group ON deployments (application, group_name, create_time)",
        "CREATE INDEX deployments_by_time ON deployments (create_time)",
        """CREATE TABLE stop_requests (
            deployment_id TEXT PRIMARY KEY,
            rollback BOOLEAN NOT NULL,
            force BOOLEAN NOT NULL,
            requested DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE lifecycle_events (
            deployment_id TEXT NOT NULL,
            host TEXT NOT NULL,
            event TEXT NOT NULL,
            record TEXT NOT NULL,
            output TEXT NOT NULL,
            seq BIGSERIAL NOT NULL,
            PRIMARY KEY (deployment_id, host, event)
        )""",
    ),
    (
        # 2: who holds each group's lock, for messages (the lock itself is an advisory lock).
        """CREATE TABLE group_locks (
            group_id TEXT PRIMARY KEY,
            lock_key BIGINT NOT NULL,
            label TEXT NOT NULL,
            deployment TEXT,
            holder TEXT,
            pid INTEGER,
            since TEXT
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def server(url: str) -> str:
    """``host:port/database`` as libpq reads them from the URL and its environment."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return without_password(url)
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    user = params.get("user") or os.environ.get("PGUSER") or ""
    database = str(params.get("dbname") or os.environ.get("PGDATABASE") or user or "?")
    return f"{host}:{port}/{database}"


def advice(exc: BaseException) -> str:
    """What to do about a failure of the database or of the way to it."""
    text = str(exc).lower()
    elsewhere = "or point --state (or ORCHESTRATOR_STATE) to another store"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return (
            f"a statement waited more than {STATEMENT_TIMEOUT_MS // 1000} s (a table locked by "
            f"another session, or an overloaded server): look at pg_stat_activity, {elsewhere}"
        )
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError | psycopg.ProgrammingError):
        return f"the database refused a record (a bug: please report it), {elsewhere}"
    if not isinstance(exc, psycopg.Error | OSError):
        return f"a record could not be sent (a bug: please report it), {elsewhere}"
    if "password" in text or "authentication" in text:
        return (
            "check the user and password (the URL, PGPASSWORD or ~/.pgpass) and the server's "
            f"pg_hba.conf, {elsewhere}"
        )
    if "does not exist" in text and "database" in text:
        return f"create the database (createdb), {elsewhere}"
    if "permission denied" in text:
        return f"grant this user the right to create tables in the database, {elsewhere}"
    return (
        "the database went away or cannot be reached: check that the server runs and that this "
        f"machine reaches it, {elsewhere}"
    )


def failure(where: str, doing: str, exc: BaseException) -> StoreError:
    """A psycopg (or OS) error as a ``StoreError``: libpq's message, less any password."""
    cause = RuntimeError(scrubbed(str(exc).strip()) or type(exc).__name__)
    return StoreError(where, doing, cause, advice(exc))


@contextmanager
def guarded(where: str, doing: str) -> Iterator[None]:
    """psycopg's and the OS's errors as a ``StoreError`` naming the server."""
    try:
        yield
    except (psycopg.Error, OSError) as exc:
        raise failure(where, doing, exc) from exc


def connect(
    url: str, purpose: str = "history", *, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (each statement its own transaction, unless grouped),
    whose statements give up after ``statement_timeout_ms``: a table locked by someone's
    ``ALTER TABLE`` or a stalled server must not hold the engine's event loop for ever."""
    with guarded(server(url), "cannot be opened"):
        given = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"orchestrator {purpose}",
            # Appended to the URL's own options (a search_path, say), which a keyword replaces.
            options=f"{given} -c statement_timeout={statement_timeout_ms}".strip(),
            **KEEPALIVES,
        )


def schema_version(db: psycopg.Connection[Any]) -> int:
    """The version of the last migration applied; 0 for a database without orchestrator's
    tables."""
    # pg_class itself, read with this statement's snapshot: a name lookup (to_regclass) may
    # answer from a cache that has not yet heard of a table another session just committed.
    found = db.execute(
        "SELECT count(*) > 0 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = 'schema_version' "
        "AND n.nspname = current_schema()"
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _newer(version: int) -> RuntimeError:
    return RuntimeError(
        f"its schema is version {version}, newer than this orchestrator knows "
        f"({SCHEMA_VERSION}): upgrade orchestrator to one that knows it"
    )


def _apply(db: psycopg.Connection[Any], start: int, upto: int) -> None:
    if start == 0:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (0)")
    for version in range(start + 1, upto + 1):
        for statement in MIGRATIONS[version - 1]:
            db.execute(statement)
    db.execute("UPDATE schema_version SET version = %s", (upto,))


def _locked(db: psycopg.Connection[Any], change: Callable[[int], int]) -> tuple[int, int]:
    """``change(version)`` in one transaction under the schema's advisory lock: (before,
    after). Creating or migrating in one transaction means another process sees all or none."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        before = schema_version(db)
        return before, change(before)


def prepare(db: psycopg.Connection[Any], where: str, upto: int = SCHEMA_VERSION) -> None:
    """Create the tables in a database that has none; refuse a schema of another version."""

    def create(version: int) -> int:
        if version == 0:
            _apply(db, 0, upto)
            return upto
        return version

    with guarded(where, "cannot be opened"):
        version = schema_version(db)
        if version == 0:
            version = _locked(db, create)[1]
    if version > SCHEMA_VERSION:
        raise StoreError(where, "cannot be used", _newer(version), "or point --state elsewhere")
    if version < SCHEMA_VERSION:
        raise StoreError(
            where,
            "cannot be used",
            RuntimeError(f"its schema is version {version}, older than this orchestrator's"),
            f"upgrade it with `orchestrator state migrate` (to version {SCHEMA_VERSION})",
        )


def migrate(db: psycopg.Connection[Any], where: str) -> tuple[int, int]:
    """Upgrade the schema to this orchestrator's version: (before, after)."""

    def upgrade(version: int) -> int:
        if version > SCHEMA_VERSION:
            raise _newer(version)
        if version < SCHEMA_VERSION:
            _apply(db, version, SCHEMA_VERSION)
        return SCHEMA_VERSION

    try:
        with guarded(where, "cannot be migrated"):
            return _locked(db, upgrade)
    except RuntimeError as exc:
        raise StoreError(where, "cannot be migrated", exc, "or point --state elsewhere") from exc
