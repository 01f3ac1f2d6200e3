"""The deployment history in PostgreSQL, shared by controllers on many machines.

The same records as SQLite (``state/sqlite.py``): every deployment's document, every lifecycle
event's record and output, stop requests, and which process runs each deployment (with the
machine it runs on). The tables and their versions: ``state/postgres_db.py``; the group locks:
``state/postgres_lock.py``.

Writes leave the engine's event loop at once: a writer thread of its own, on a connection of
its own, sends what the events changed in batches (one transaction, pipelined, for whatever
queued up while the last batch was on its way), so a slow network to the server never holds up
the hosts. A deployment's start and end, and every write a caller makes (``save``,
``request_stop``, ``mark_stopped``), wait until the server has them; so do reads, which see
this process's own writes. A write that fails is raised from the next event the store is given,
as the engine expects of a sink whose disk filled up: the rollout stops saying why.

A deployment still InProgress whose controller is gone is ``interrupted``: on this machine its
process is gone (as with SQLite); on another, its group's lock is free or held by another
process (PostgreSQL releases a dead controller's lock with its connection).
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from typing import Any, LiteralString, assert_never

import psycopg

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
from orchestrator.state.location import without_password
from orchestrator.state.postgres_db import connect, failure, guarded, prepare, server
from orchestrator.state.postgres_lock import PostgresLock
from orchestrator.state.process import ProcessIdentity
from orchestrator.state.sqlite_db import overlay

SAVE_INTERVAL = 1.0
POLL_TIMEOUT_MS = 2000


def storable(text: str) -> str:
    """``text`` as PostgreSQL's ``text`` can hold it: a NUL (which a hook may print, and
    SQLite keeps) as U+FFFD, as undecodable bytes already are."""
    return text.replace("\x00", "\ufffd")


_Write = tuple[LiteralString, tuple[Any, ...]]

SAVE_SQL: LiteralString = (
    "INSERT INTO deployments (id, application, group_name, status, create_time, complete_time, "
    "pid, machine, document, pid_start) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET application = EXCLUDED.application, "
    "group_name = EXCLUDED.group_name, status = EXCLUDED.status, "
    "create_time = EXCLUDED.create_time, complete_time = EXCLUDED.complete_time, "
    "pid = EXCLUDED.pid, machine = EXCLUDED.machine, document = EXCLUDED.document, "
    "pid_start = EXCLUDED.pid_start"
)
EVENT_SQL: LiteralString = (
    "INSERT INTO lifecycle_events (deployment_id, host, event, record, output) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (deployment_id, host, event) DO UPDATE SET "
    "record = EXCLUDED.record, output = EXCLUDED.output, seq = DEFAULT"
)


class _Writer:
    """Runs the store's writes in a thread, in order, a batch per transaction."""

    def __init__(self, url: str, where: str) -> None:
        self.where = where
        self._db = connect(url, "writer")
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self.error: StoreError | None = None
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def put(self, write: _Write) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(write)

    def flush(self) -> None:
        """Wait until everything queued is written; the first write that failed, raised."""
        self._queue.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [write for write in batch if write is not None]
            done = len(writes) < len(batch)
            try:
                if writes and self.error is None:
                    with self._db.pipeline(), self._db.transaction():
                        for statement, values in writes:
                            self._db.execute(statement, values)
            except Exception as exc:
                self.error = failure(self.where, "cannot be written", exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)
        self._db.close()


class PostgresStore:
    """A ``Store`` (``state/base.py``) in a PostgreSQL database."""

    shared = True  # controllers on other machines read it: stop requests go through it

    def __init__(self, url: str) -> None:
        """Connect (creating the tables in a database that has none; ``StoreError`` naming
        host:port/database for an unreachable server, a wrong password, a missing database,
        or a schema of another version)."""
        self.url = url
        self.where = server(url)
        self.label = f"the history store {self.where}"
        self._last_save = 0.0
        self._controller = ProcessIdentity.current()
        self._db = connect(url)
        try:
            prepare(self._db, self.where)
        except BaseException:
            self._db.close()
            raise
        self._writer: _Writer | None = None
        self._poller: psycopg.Connection[Any] | None = None  # stop_request's connection

    @property
    def location(self) -> str:
        return without_password(self.url)

    @property
    def _writes(self) -> _Writer:
        if self._writer is None:  # opened on the first write: `status` needs only one connection
            self._writer = _Writer(self.url, self.where)
        return self._writer

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._db.close()
            if self._poller is not None:
                self._poller.close()

    def _flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _read(
        self, query: LiteralString, values: tuple[Any, ...] = (), *, own: bool = True
    ) -> list[tuple[Any, ...]]:
        """Rows of ``query``; ``own``: of what this process may have queued, written first."""
        if own:
            self._flush()
        try:
            with guarded(self.where, "cannot be read"):
                return self._db.execute(query, values).fetchall()
        except StoreError:
            if not (self._db.closed or self._db.broken):
                raise
        # The connection died (a restart, a terminated session, a blip): reads hold no state,
        # so one new connection and one more try; a stop poll must not go deaf for good.
        self._db.close()
        self._db = connect(self.url)
        with guarded(self.where, "cannot be read"):
            return self._db.execute(query, values).fetchall()

    def _other(self, query: LiteralString, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows of what other processes wrote (this one's queued writes not waited for)."""
        return self._read(query, values, own=False)

    def group_lock(self, application: str, group: str, group_id: str) -> PostgresLock:
        return PostgresLock(self.url, self._other, group_id, f"{application}/{group}")

    # -- writing (as an event sink) --------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        match event:
            case DeploymentStarted() | DeploymentFinished():
                self.save(event.deployment)
            case LifecycleEventStarted() | LifecycleEventFinished():
                record = json.dumps(event.event.to_document())
                self._writes.put(
                    (EVENT_SQL, (event.deployment.deployment_id, event.target.host,
                                 event.event.name, record, storable(event.event.output)))
                )  # fmt: skip
            case TargetFinished() | HostUnreachable():
                if time.monotonic() - self._last_save >= SAVE_INTERVAL:
                    self._writes.put(self._save(event.deployment))
            case TargetStarted() | ZoneBaking() | Notice():
                pass  # what they say is in the next save's document, or not recorded at all
            case _:
                assert_never(event)

    def save(self, deployment: Deployment) -> None:
        self._writes.put(self._save(deployment))
        self._writes.flush()

    def _save(self, deployment: Deployment) -> _Write:
        self._last_save = time.monotonic()
        return (
            SAVE_SQL,
            (deployment.deployment_id, deployment.application, deployment.group,
             deployment.status.value, deployment.create_time, deployment.complete_time,
             self._controller.pid, socket.gethostname(), json.dumps(deployment.to_document()),
             self._controller.start),
        )  # fmt: skip

    def request_stop(self, deployment_id: str, *, rollback: bool, force: bool) -> None:
        self._writes.put(
            ("INSERT INTO stop_requests VALUES (%s, %s, %s, %s) ON CONFLICT (deployment_id) "
             "DO UPDATE SET rollback = EXCLUDED.rollback, force = EXCLUDED.force, "
             "requested = EXCLUDED.requested", (deployment_id, rollback, force, time.time()))
        )  # fmt: skip
        self._writes.flush()

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
        self._writes.put(
            ("UPDATE deployments SET status = %s, document = %s WHERE id = %s",
             (Status.STOPPED.value, json.dumps(document), deployment_id))
        )  # fmt: skip
        self._writes.flush()

    def stop_request(self, deployment_id: str) -> RecordedStop | None:
        # Polled about once a second from the engine's event loop, which waits on it: on a
        # connection of its own whose statements give up after POLL_TIMEOUT_MS (a table locked
        # by someone's ALTER TABLE must not freeze every host), renewed when it dies.
        if self._poller is None or self._poller.closed or self._poller.broken:
            if self._poller is not None:
                self._poller.close()
            self._poller = connect(self.url, "stop poll", statement_timeout_ms=POLL_TIMEOUT_MS)
        with guarded(self.where, "cannot be read"):
            rows = self._poller.execute(
                "SELECT rollback, force, requested FROM stop_requests WHERE deployment_id = %s",
                (deployment_id,),
            ).fetchall()
        return None if not rows else RecordedStop(bool(rows[0][0]), bool(rows[0][1]), rows[0][2])

    # -- reading ---------------------------------------------------------------------------------

    def runner(self, deployment_id: str) -> Runner | None:
        rows = self._read(
            "SELECT pid, pid_start, machine FROM deployments WHERE id = %s", (deployment_id,)
        )
        if not rows or rows[0][0] is None:
            return None
        pid, start, machine = rows[0]
        return Runner(ProcessIdentity(int(pid), start), str(machine))

    def controller_alive(self, deployment_id: str) -> bool | None:
        runner = self.runner(deployment_id)
        if runner is None or runner.machine != socket.gethostname():
            return None
        return runner.process.alive()

    def _interrupted(self, deployment_id: str, group_id: str) -> bool:
        """Its controller is gone: from this machine, or (elsewhere) it no longer holds the
        group's lock, which PostgreSQL released with its connection."""
        runner = self.runner(deployment_id)
        if runner is None:
            return False
        if runner.machine == socket.gethostname():
            return not runner.process.alive()
        holder = PostgresLock(self.url, self._other, group_id, "").holder()
        return holder is None or (holder.pid, holder.holder and holder.holder.split("@")[-1]) != (
            runner.process.pid,
            runner.machine,
        )

    def last_successful(
        self, application: str, group: str, *, before: str | None = None
    ) -> Deployment | None:
        newest = 1e18
        if before is not None:
            rows = self._read("SELECT create_time FROM deployments WHERE id = %s", (before,))
            newest = rows[0][0] if rows else newest
        rows = self._read(
            "SELECT document FROM deployments WHERE application = %s AND group_name = %s "
            "AND status = %s AND create_time < %s ORDER BY create_time DESC LIMIT 1",
            (application, group, Status.SUCCEEDED.value, newest),
        )
        return None if not rows else self._model(rows[0][0])

    def get(self, deployment_id: str | None = None) -> Deployment | None:
        document = self._document(deployment_id)
        return None if document is None else self._model(document)

    def _model(self, document: str | dict[str, Any]) -> Deployment:
        try:
            parsed = json.loads(document) if isinstance(document, str) else document
            return Deployment.from_document(parsed)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                self.where, "cannot be read", ValueError(f"a damaged record ({exc!r})")
            ) from exc

    def _document(self, deployment_id: str | None) -> dict[str, Any] | None:
        """The recorded document, with a running deployment's latest events and, when its
        controller is gone, ``interrupted``."""
        if deployment_id is None:
            rows = self._read("SELECT document FROM deployments ORDER BY create_time DESC LIMIT 1")
        else:
            rows = self._read("SELECT document FROM deployments WHERE id = %s", (deployment_id,))
        if not rows:
            return None
        try:
            document = dict(json.loads(rows[0][0]))
        except ValueError as exc:
            raise StoreError(
                self.where, "cannot be read", ValueError(f"a damaged record ({exc})")
            ) from exc
        if document.get("status") == Status.IN_PROGRESS:
            identifier = str(document["deploymentId"])
            overlay(
                document,
                self._read(
                    "SELECT host, event, record FROM lifecycle_events WHERE deployment_id = %s",
                    (identifier,),
                ),
            )
            with guarded(self.where, "cannot be read"):
                if self._interrupted(identifier, str(document.get("deploymentGroupId"))):
                    document["interrupted"] = True
        return document

    def history(
        self, application: str | None = None, group: str | None = None, limit: int = 20
    ) -> list[Deployment]:
        rows = self._read(
            "SELECT document FROM deployments WHERE (%s::text IS NULL OR application = %s) "
            "AND (%s::text IS NULL OR group_name = %s) ORDER BY create_time DESC LIMIT %s",
            (application or None, application, group or None, group, limit),
        )
        return [self._model(text) for (text,) in rows]

    def logs(
        self, deployment_id: str, host: str | None = None, event: str | None = None
    ) -> list[LogEntry]:
        rows = self._read(
            "SELECT host, event, output FROM lifecycle_events WHERE deployment_id = %s "
            "AND output != '' AND (%s::text IS NULL OR host = %s) "
            "AND (%s::text IS NULL OR event = %s) ORDER BY seq",
            (deployment_id, host, host, event, event),
        )
        return [LogEntry(str(h), str(e), str(o)) for h, e, o in rows]
