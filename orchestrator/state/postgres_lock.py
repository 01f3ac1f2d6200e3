"""A deployment group's lock among controllers that share a PostgreSQL history.

The lock is a session-level advisory lock (``pg_try_advisory_lock``) keyed by a stable 64-bit
hash of the group's id, taken on a connection of its own that stays open for the rollout; a
row of ``group_locks`` names the holder (deployment, user@machine, pid, since) for messages.

Why an advisory lock rather than a lease that expires: PostgreSQL itself releases it when the
holder's connection ends, however the holder ends (a crash, SIGKILL, a machine that loses power:
the server notices the dead connection through its TCP keepalives), so a successor never waits
out a lease, and a slow holder never loses a lease it could not renew in time while it still
deploys. There is exactly one holder at any moment, decided by the server; no clocks compared.
The other side of that coin: a holder whose connection dies has lost the lock, and another
controller may take it at once. So the holder watches its connection (a ``SELECT 1`` about
once a second, in a thread, with TCP keepalives and a TCP user timeout set on the connection:
``state/postgres_db.py``; the server's keepalives on it are set as short, so that a holder
whose machine vanished without a word loses the lock in about 25 s), and ``lost`` says why once
it fails: the engine then stops the
rollout as it does when the history cannot be written (``engine/release.py``).

The hosts keep their own lock too (``hostproto/programs/lock.sh``): this one only decides which
controller goes to them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any, LiteralString

import psycopg

from orchestrator.errors import LockHeld, StoreError
from orchestrator.hostproto.holder import LockHolder
from orchestrator.state.postgres_db import connect, failure, guarded, server

# The store's reads: rows of a query (``StoreError`` when the database cannot answer).
Reader = Callable[[LiteralString, tuple[Any, ...]], list[tuple[Any, ...]]]
POLL_START = 0.05
ANNOUNCE_WAIT = 5.0  # seconds a loser waits for the winner's row (written right after winning)
ANNOUNCE_POLL = 0.05
POLL_MAX = 1.0
WATCH_INTERVAL = 1.0  # how often a held lock's connection is checked, in seconds
SERVER_KEEPALIVES = (
    ("tcp_keepalives_idle", 10),
    ("tcp_keepalives_interval", 5),
    ("tcp_keepalives_count", 3),
)


def lock_key(group_id: str) -> int:
    """A stable signed 64-bit key for the group (sha256's first 8 bytes: the same on every
    machine and Python, unlike ``hash``)."""
    digest = hashlib.sha256(f"orchestrator group {group_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLock:
    """A ``GroupLock`` (``state/base.py``) held in PostgreSQL."""

    def __init__(self, url: str, reader: Reader, group_id: str, label: str):
        self.url = url
        self.where = server(url)
        self.reader = reader  # the store's reads (on a connection it renews): the holder's row
        self.group_id = group_id
        self.label = label
        self.key = lock_key(group_id)
        self._held: psycopg.Connection[Any] | None = None
        self._lost: StoreError | None = None
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def acquire(self, deployment_id: str, wait: float | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds; ``LockHeld`` naming the holder."""
        db = connect(self.url, "group lock")
        deadline = time.monotonic() + (wait or 0)
        delay = POLL_START
        try:
            with guarded(self.where, "cannot lock the group"):
                # The server's side of the same keepalives: a holder whose machine vanished
                # (no FIN, no RST) lets the lock go in about 25 s, not after the server's
                # default two hours.
                for setting, value in SERVER_KEEPALIVES:
                    db.execute("SELECT set_config(%s, %s, false)", (setting, str(value)))
                while not db.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]:  # type: ignore[index]
                    left = deadline - time.monotonic()
                    if left <= 0:
                        holder = self._announced()
                        raise LockHeld(
                            f"deployment group {self.label} is locked by {holder.describe()}",
                            dict(holder.pairs()),
                        )
                    # Bounded by the deadline, and tried once more at it: an advisory lock has
                    # no timed wait.
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, POLL_MAX)
                me = LockHolder.here(deployment_id)
                db.execute(
                    "INSERT INTO group_locks VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (group_id) DO UPDATE SET lock_key = EXCLUDED.lock_key, "
                    "label = EXCLUDED.label, deployment = EXCLUDED.deployment, "
                    "holder = EXCLUDED.holder, pid = EXCLUDED.pid, since = EXCLUDED.since",
                    (self.group_id, self.key, self.label, deployment_id, me.holder, me.pid,
                     me.since),
                )  # fmt: skip
        except BaseException:
            db.close()
            raise
        self._held, self._lost = db, None
        self._stop.clear()
        self._watch = threading.Thread(target=self._watching, name="group-lock-watch", daemon=True)
        self._watch.start()

    def _watching(self) -> None:
        """Check the lock's connection until released; note why it died, if it does."""
        held = self._held
        while held is not None and not self._stop.wait(WATCH_INTERVAL):
            try:
                held.execute("SELECT 1")
            except (psycopg.Error, OSError) as exc:
                if not self._stop.is_set():
                    self._lost = failure(self.where, "lost the group's lock", exc)
                return

    def lost(self) -> StoreError | None:
        """Why the lock is no longer held (its connection to the database died: PostgreSQL has
        let it go, and another controller may hold it now), else None."""
        return self._lost

    def holder(self) -> LockHolder | None:
        """Who holds it now (from PostgreSQL's lock table: the row alone may be a dead
        holder's), or None when it is free."""
        rows = self.reader(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s AND objid = %s AND objsubid = 1",
            ((self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF),
        )
        if not rows or not rows[0][0]:
            return None
        return self._recorded() or LockHolder()

    def _announced(self) -> LockHolder:
        """The holder's row, for a loser's message: a winner writes it just after it takes the
        lock, so a loser that looks in between waits for it (briefly, bounded)."""
        deadline = time.monotonic() + ANNOUNCE_WAIT
        while (holder := self._recorded()) is None and time.monotonic() < deadline:
            time.sleep(ANNOUNCE_POLL)
        return holder or LockHolder()

    def _recorded(self) -> LockHolder | None:
        rows = self.reader(
            "SELECT deployment, holder, pid, since FROM group_locks WHERE group_id = %s",
            (self.group_id,),
        )
        if not rows:
            return None
        deployment, holder, pid, since = rows[0]
        return LockHolder(deployment=deployment, holder=holder, pid=pid, since=since)

    def release(self) -> None:
        """Let it go; on a connection that died, PostgreSQL let it go already."""
        held, self._held = self._held, None
        if held is None:
            return
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=5)
        try:
            if self._lost is None:
                held.execute("DELETE FROM group_locks WHERE group_id = %s AND pid = %s "
                             "AND holder = %s", (self.group_id, *_me()))  # fmt: skip
                held.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except (psycopg.Error, OSError):
            pass  # its connection died: the server released the lock with it
        finally:
            held.close()


def _me() -> tuple[int, str | None]:
    here = LockHolder.here()
    return here.pid or 0, here.holder
