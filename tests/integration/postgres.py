"""A real PostgreSQL server (Debian's package) on loopback, for the PostgreSQL history store.

``initdb`` into a temporary directory and ``postgres`` on 127.0.0.1 at a free port, with its unix
socket in that directory, run as an unprivileged user (PostgreSQL refuses to run as root: as
root the tests run it as ``nobody``). Password authentication over TCP (scram-sha-256), so the
tests connect as an operator would, with a password in the URL or in PGPASSWORD. Without the
package the fixture fails, naming what to install: these tests never skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.haproxy import free_port

SUPERUSER = "postgres"
PASSWORD = "pg-s3cret-Word"  # what the tests look for wherever a password must not be
READY_TIMEOUT = 60.0


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian puts them under /usr/lib/postgresql)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        pytest.fail(
            "PostgreSQL is not installed: apt-get install postgresql (.ci/run installs it); "
            "the PostgreSQL history store's tests run against a real server"
        )
    return found[-1].parent


@dataclass
class PostgresServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(), autocommit=True, connect_timeout=10)

    def new_database(self) -> str:
        """A database of its own for a test; its URL (with the password)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # generated name
        self.databases.append(name)
        return self.url(name)

    def terminate(self, database: str, application: str = "orchestrator%") -> int:
        """End the server's sessions of ``application`` on ``database`` (as an administrator
        would, or a crashed backend): how many it ended."""
        with self.admin() as db:
            rows = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name LIKE %s",
                (database, application),
            ).fetchall()
        return len(rows)

    def start(self) -> None:
        log = (self.directory / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [str(postgres_bin() / "postgres"), "-D", str(self.directory / "data"),
             "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", f"unix_socket_directories={self.directory}", "-c", "fsync=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, **_as_owner(),
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.admin().close()
                return
            except psycopg.OperationalError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.directory / "postgres.log").read_text(errors="replace")
                    raise AssertionError(f"PostgreSQL did not start: {exc}\n{log_text}") from exc
            time.sleep(0.1)  # polling the server's readiness, under the deadline above

    def stop(self) -> None:
        """A fast shutdown (SIGINT: sessions ended, as when a server is stopped under us)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _owner() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as, when we are root."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _as_owner() -> dict[str, Any]:
    owner = _owner()
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server (initdb), started, stopped and removed at the end."""
    binaries = postgres_bin()
    directory = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    try:
        owner = _owner()
        if owner is not None:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        password_file = directory / "pwfile"
        password_file.write_text(PASSWORD + "\n")
        if owner is not None:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(directory / "data"), "-U", SUPERUSER,
             f"--pwfile={password_file}", "--auth-host=scram-sha-256", "--auth-local=trust",
             "-E", "UTF8", "--no-sync", "--locale=C"],
            check=True, capture_output=True, timeout=120, **_as_owner(),
        )  # fmt: skip
        server = PostgresServer(directory, free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
