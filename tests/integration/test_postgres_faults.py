"""Faults of the PostgreSQL history store that a hostile review found (issue 18), each test
written to reproduce one: its docstring says what went wrong before the fix; the test asserts
what holds now. Against the real PostgreSQL server and lab hosts the suite starts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from orchestrator.events import DeploymentStarted, LifecycleEventFinished
from orchestrator.lab.fleet import Lab
from orchestrator.models.results import Status
from orchestrator.state.base import open_store
from tests.integration.postgres import PostgresServer
from tests.integration.revisions import script_bundle
from tests.integration.test_postgres_state import (
    Controller,
    _rollout_args,
    _started,
    _wait,
    release_hooks,
)
from tests.unit.test_store_contract import _deployment

SECRET = "Rev18-Top-Secret"


# -- 1. a NUL byte in a hook's output stops a rollout recorded in PostgreSQL -----------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_hook_output_holding_a_nul_byte_is_recorded(
    backend: str, tmp_path: Path, postgres_url: str
) -> None:
    """SQLite keeps it; PostgreSQL text cannot hold NUL: the writer's batch fails with a
    DataError, reported as 'cannot be written ... the database went away'."""
    store = open_store(str(tmp_path / "state") if backend == "sqlite" else postgres_url)
    try:
        deployment = _deployment("d-NUL", 1.0)
        deployment.status = Status.IN_PROGRESS
        target = deployment.targets["h1"]
        store(DeploymentStarted(deployment))
        event = target.event("AfterInstall")
        event.status, event.output = Status.SUCCEEDED, "[stdout]bin\x00ary\n"
        store(LifecycleEventFinished(deployment, target, event))
        deployment.status = Status.SUCCEEDED
        store.save(deployment)  # PostgreSQL: StoreError 'cannot be written'
        kept = "[stdout]bin\x00ary\n" if backend == "sqlite" else "[stdout]bin\ufffdary\n"
        assert [e.output for e in store.logs("d-NUL")] == [kept]
    finally:
        store.close()


def test_a_rollout_whose_hook_prints_a_nul_byte_succeeds(
    small_lab: Lab, tmp_path: Path, postgres_url: str
) -> None:
    bundle = script_bundle(tmp_path, "nul", {"AfterInstall": "printf 'bin\\000ary\\n'\n"})
    result = Controller(tmp_path / "c", postgres_url).run(
        *_rollout_args(small_lab, bundle, tmp_path / "e.ndjson")
    )
    assert result.returncode == 0, result.stderr  # on main: 8, "the database went away"


# -- 2. the password printed ---------------------------------------------------------------


def _cli(state: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--state", state, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        # orchestrator takes the scheme case-insensitively; libpq does not, and prints it all
        "POSTGRESQL://postgres:{s}@127.0.0.1:{port}/postgres",
        "Postgres://postgres:{s}@127.0.0.1:{port}/postgres",
        # libpq quotes the token it could not decode: the password
        "postgresql://postgres:{s}%zz@127.0.0.1:{port}/postgres",
        # urlsplit raises: a traceback (exit 1) whose psycopg cause quotes the URL
        "postgresql://postgres:{s}@[::1:{port}/postgres",
    ],
)
def test_a_malformed_url_never_prints_its_password(url: str, postgres: PostgresServer) -> None:
    state = url.format(s=SECRET, port=postgres.port)
    for args in (["history"], ["status"], ["state", "migrate"]):
        result = _cli(state, *args)
        assert SECRET not in result.stdout + result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert result.returncode in (2, 8), (args, result.returncode, result.stderr)


def test_a_malformed_url_is_a_usage_error_not_a_database_that_went_away(
    postgres: PostgresServer,
) -> None:
    """README: a --state no command could use is a usage error, exit 2. A URL libpq cannot parse
    (an unknown query option, a port that is no number) is exit 8 'the database went away or
    cannot be reached: check that the server runs'."""
    for state in (
        f"postgresql://postgres:{SECRET}@127.0.0.1:{postgres.port}/postgres?sslmod=require",
        f"postgresql://postgres:{SECRET}@127.0.0.1:port/postgres",
    ):
        result = _cli(state, "history")
        assert result.returncode == 2, result.stderr
        assert "went away" not in result.stderr


# -- 3. the server never drops a vanished controller's session (its lock) ------------------


def test_the_server_notices_a_vanished_controller_within_half_a_minute(
    postgres_url: str,
) -> None:
    """README: the advisory lock is released 'however the holder ends (... a machine that
    vanishes, noticed through TCP keepalives set on that connection: about 25 s)'. The keepalives
    set (libpq's keepalives_*, tcp_user_timeout) are the CLIENT's: the server's side of the lock
    connection keeps the kernel defaults (tcp_keepalives_idle 7200 s here), so PostgreSQL keeps a
    vanished controller's session, and its group lock, for over two hours."""
    from orchestrator.state.postgres_lock import PostgresLock

    store = open_store(postgres_url)
    lock = PostgresLock(postgres_url, store._db, "gid-web", "hello/web")  # type: ignore[attr-defined]
    lock.acquire("d-X")
    try:
        assert lock._held is not None
        held = lock._held
        settings = {
            name: int(held.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        }
        noticed = (
            settings["tcp_keepalives_idle"]
            + settings["tcp_keepalives_interval"] * settings["tcp_keepalives_count"]
        )
        assert noticed <= 60, settings  # on main: 7200 + 75 * 9 = 7875 s
    finally:
        lock.release()
        store.close()


# -- 4. a lost group-lock connection: another controller takes the hosts while hooks run -----


def _events_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_lost_group_lock_connection_lets_nobody_take_over_hosts_whose_hooks_still_run(
    small_lab: Lab, tmp_path: Path, postgres: PostgresServer, postgres_url: str
) -> None:
    """Only A's group-lock session ends (pg_terminate_backend, an idle-connection reaper, a
    proxy restart): A stops starting events but its running hook goes on (README: "running
    hooks finish"). B takes the group lock at once, and judges A's deployment interrupted
    (the lock is no longer A's), so B takes over web-1's host lock at once, without waiting out
    its heartbeat, and deploys web-1 while A's AfterInstall is still running there."""
    database = postgres_url.rsplit("/", 1)[1]
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, _events, deployment_id = _started(a, small_lab, tmp_path)
    try:
        assert postgres.terminate(database, "orchestrator group lock") == 1
        b_events = tmp_path / "b.ndjson"
        bundle = script_bundle(tmp_path, "next", {})
        taken = b.run(*_rollout_args(small_lab, bundle, b_events, "--lock-wait", "20"))
        still_running = process.poll() is None  # A's hook still waits for GO on web-1
        assert still_running
        assert f"took over a stale lock held by {deployment_id}" not in _events_text(b_events), (
            "B took web-1's host lock while A's AfterInstall still ran there",
            taken.returncode,
        )
        assert not small_lab.host_path("web-1", "/srv/next/index.txt").exists()
    finally:
        release_hooks(small_lab)
        _wait(process)


# -- 5. a lost history (read) connection: stop requests silently never read -----------------


def test_a_lost_history_connection_does_not_silently_disable_stop(
    small_lab: Lab, tmp_path: Path, postgres: PostgresServer, postgres_url: str
) -> None:
    """Only A's 'orchestrator history' session ends (the writer and the lock sessions live on).
    StoreStop.poll swallows the StoreError of every later read, no reconnect is tried, so a
    `stop` from another machine is recorded and never read: the rollout runs to the end and
    exits 0. It should either reconnect and obey, or stop as a local fault (exit 8)."""
    database = postgres_url.rsplit("/", 1)[1]
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, _events, deployment_id = _started(a, small_lab, tmp_path)
    try:
        assert postgres.terminate(database, "orchestrator history") == 1
        asked = b.run("stop", deployment_id, "--wait", "0")
        assert asked.returncode == 0, asked.stderr
        time.sleep(5)  # A reads stop requests about once a second
    finally:
        release_hooks(small_lab)
    code = _wait(process)
    assert code in (6, 8), (code, a.stderr("a"))
    assert small_lab.host_path("web-2", "/srv/slow").exists() is False


# -- 7. the writer thread dies on an exception it does not expect; every later flush hangs ----


def test_a_write_the_writer_cannot_encode_fails_the_store_instead_of_hanging_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_Writer._run catches psycopg.Error and OSError only. psycopg raises UnicodeEncodeError
    (a ValueError) for a str holding a lone surrogate (what Python makes of undecodable bytes:
    a host name, argv, a file name): the thread dies, the queue is never drained again, and the
    next save waits in queue.join() forever (here: a daemon thread that never returns)."""
    import socket
    import threading

    store = open_store(postgres_url)
    outcome: list[object] = []
    try:
        monkeypatch.setattr(socket, "gethostname", lambda: "ctl-\udcff")
        deployment = _deployment("d-SUR", 1.0)

        def saving() -> None:
            try:
                store.save(deployment)  # the writer thread dies here (UnicodeEncodeError)
                store.save(deployment)  # queued for a dead thread
                outcome.append("returned")
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=saving, daemon=True)
        thread.start()
        thread.join(timeout=15)
        assert not thread.is_alive(), "store.save() hangs: the writer thread is dead"
    finally:
        monkeypatch.undo()


# -- 8. a query that waits (a lock, a stalled server) freezes the engine's event loop --------


def test_a_blocked_stop_poll_does_not_freeze_the_rollout(
    small_lab: Lab, tmp_path: Path, postgres_url: str
) -> None:
    """The stop poll (StoreStop.poll -> PostgresStore.stop_request) runs a query synchronously
    on the event loop, with no statement_timeout or lock_timeout. While it waits (here: an
    ACCESS EXCLUSIVE lock on stop_requests, as an ALTER TABLE of a later migration, a VACUUM
    FULL or a pg_dump --lock-wait... would take; or a server stalled on its disk), the whole
    engine stops: no host progresses and even SIGTERM is not acted upon."""
    import signal

    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    process, _events, _ = _started(a, small_lab, tmp_path)
    admin = psycopg.connect(postgres_url)
    try:
        admin.execute("LOCK TABLE stop_requests IN ACCESS EXCLUSIVE MODE")  # held: no commit
        time.sleep(2)  # the next stop poll (about once a second) now waits for the lock
        release_hooks(small_lab)
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        assert code is not None, "SIGTERM not acted upon in 20 s: the event loop waits on SQL"
    finally:
        admin.rollback()
        admin.close()
        release_hooks(small_lab)
        _wait(process)


# -- 9. lock status / lock release speak of "this machine" for a lock held on another --------


def test_lock_commands_name_the_machine_that_holds_a_postgresql_group_lock(
    small_lab: Lab, tmp_path: Path, postgres_url: str
) -> None:
    """With a PostgreSQL store the group lock is shared: `lock status` prints 'this machine:
    held by ... root@ctl-a', and `lock release --force` refuses with 'deployment ... runs on
    this machine (process N)' for a deployment running on ctl-a; --kill then fails with a usage
    error about 'another --state?'. The refusal is right; what it says is wrong."""
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, _, _deployment_id = _started(a, small_lab, tmp_path)
    try:
        inventory = str(small_lab.inventory_path)
        status = b.run("-i", inventory, "lock", "status", "-a", "hello", "-g", "web")
        released = b.run("-i", inventory, "lock", "release", "-a", "hello", "-g", "web", "--force")
        killed = b.run("-i", inventory, "lock", "release", "-a", "hello", "-g", "web", "--force",
                       "--kill", "--wait", "1")  # fmt: skip
        assert released.returncode == 7, released.stderr
        assert "runs on this machine" not in released.stderr, released.stderr
        assert "this machine: held by" not in status.stdout, status.stdout
        assert "another --state" not in killed.stderr, killed.stderr
    finally:
        release_hooks(small_lab)
        _wait(process)


# -- 10. --lock-wait gives up early ----------------------------------------------------------


def test_lock_wait_waits_the_whole_time_asked(postgres_url: str) -> None:
    """PostgresLock.acquire gives up as soon as its next backoff sleep would pass the deadline
    (`if time.monotonic() + delay > deadline: raise`), up to POLL_MAX (1 s) early: with
    --lock-wait 2.5 it waits about 1.55 s, and misses a lock freed at 2 s."""
    import threading

    from orchestrator.errors import LockHeld

    store, other = open_store(postgres_url), open_store(postgres_url)
    holder = store.group_lock("hello", "web", "gid-web")
    waiter = other.group_lock("hello", "web", "gid-web")
    holder.acquire("d-A")
    timer = threading.Timer(2.0, holder.release)
    timer.start()
    started = time.monotonic()
    try:
        waiter.acquire("d-B", 2.5)
        waiter.release()
    except LockHeld:
        pytest.fail(f"gave up after {time.monotonic() - started:.2f}s of the 2.5s asked")
    finally:
        timer.join()
        store.close()
        other.close()
