"""The PostgreSQL history's schema (created on first use, versioned, ``state migrate``) and
``state copy`` between backends, against the real server the suite starts."""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import psycopg
from click.testing import CliRunner

from orchestrator import api
from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from orchestrator.models.results import Deployment, RevisionInfo, Status
from orchestrator.state import postgres_db
from orchestrator.state.base import Store, open_store
from orchestrator.state.sqlite_db import SCHEMA_VERSION as SQLITE_VERSION
from tests.integration.helpers import rollout
from tests.integration.postgres import PASSWORD
from tests.integration.revisions import script_bundle


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_concurrent_first_use_creates_the_schema_once(postgres_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def first_use() -> None:
        start.wait(timeout=30)
        try:
            open_store(postgres_url).close()
        except BaseException as exc:  # every failure is the test's finding
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with psycopg.connect(postgres_url) as db:
        assert postgres_db.schema_version(db) == postgres_db.SCHEMA_VERSION


def test_migrate_creates_upgrades_and_refuses_a_newer_schema(postgres_url: str) -> None:
    shown = postgres_url.replace(PASSWORD, "***")
    code, _, err = _cli("--state", postgres_url, "state", "migrate")
    assert code == 0, err
    assert f"{shown}: schema version none -> {postgres_db.SCHEMA_VERSION}" in err
    code, _, err = _cli("state", "migrate", "--state", postgres_url)
    assert code == 0 and f"already at {postgres_db.SCHEMA_VERSION}" in err
    with psycopg.connect(postgres_url, autocommit=True) as db:  # back to version 1
        db.execute("DROP TABLE group_locks")
        db.execute("UPDATE schema_version SET version = 1")
    code, _, err = _cli("--state", postgres_url, "history")
    assert code == 8 and "schema is version 1" in err and "state migrate" in err
    assert PASSWORD not in err
    code, _, err = _cli("--state", postgres_url, "state", "migrate")
    assert code == 0 and f"schema version 1 -> {postgres_db.SCHEMA_VERSION}" in err
    assert _cli("--state", postgres_url, "history")[0] == 0
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = 99")
    for args in (["history"], ["state", "migrate"]):
        code, _, err = _cli("--state", postgres_url, *args)
        assert code == 8, (args, err)
        assert "schema is version 99, newer than this orchestrator knows" in err


def test_migrate_on_sqlite_versions_an_unversioned_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    open_store(str(state)).close()
    with sqlite3.connect(state / "history.sqlite") as db:
        db.execute("DROP TABLE schema_version")  # as an older orchestrator left it
    db.close()
    code, _, err = _cli("--state", str(state), "state", "migrate")
    assert code == 0 and f"schema version none -> {SQLITE_VERSION}" in err
    with sqlite3.connect(state / "history.sqlite") as db:
        db.execute("UPDATE schema_version SET version = 7")
    db.close()
    code, _, err = _cli("--state", str(state), "history")
    assert code == 8 and "schema is version 7, newer than this orchestrator knows" in err


def _documents(store: Store) -> list[dict[str, object]]:
    return [d.to_document() for d in (store.get(s.deployment_id) for s in store.history()) if d]


def test_copy_moves_a_sqlite_history_to_postgresql_once(
    small_lab: Lab, tmp_path: Path, postgres_url: str
) -> None:
    """Real rollouts into SQLite, copied twice: the same documents and logs in PostgreSQL,
    once; ``status``, ``history`` and ``logs`` print the same from either store."""
    state = str(tmp_path / "state")  # the suite's SQLite store (ORCHESTRATOR_STATE)
    for name in ("first", "second"):
        bundle = script_bundle(tmp_path, name, {"AfterInstall": f"echo hello from {name}\n"})
        assert rollout(small_lab, bundle).exit_code == 0
    running = Deployment(
        "d-RUNNING01", "hello", "web", "gid", RevisionInfo("s", "a" * 64, 1, "directory"), "c"
    )
    running.status, running.create_time = Status.IN_PROGRESS, 1.0
    with closing(open_store(state)) as store:
        store.save(running)  # this live process runs it: not interrupted
    code, _, err = _cli("state", "copy", state, postgres_url)
    assert code == 5, err
    assert "copied 2 deployment(s) and 28 lifecycle event(s)" in err  # 2 hosts, 7 events
    assert "not copied, still running: d-RUNNING01" in err and PASSWORD not in err
    with closing(open_store(state)) as store:
        store.mark_stopped("d-RUNNING01", "stopped for the test")
    copied = api.copy_state(state, postgres_url)
    assert (copied.deployments, copied.running) == (3, [])
    source, target = open_store(state, readonly=True), open_store(postgres_url)
    try:
        assert _documents(source) == _documents(target)
        assert len(target.history()) == 3
        latest = source.history()[1].deployment_id
        assert source.logs(latest) == target.logs(latest) != []
    finally:
        source.close()
        target.close()
    for args in (["status", "--output", "json"], ["history", "--output", "json"],
                 ["logs", latest]):  # fmt: skip
        here, there = _cli("--state", state, *args), _cli("--state", postgres_url, *args)
        assert here[0] == there[0] == 0
        assert here[1] == there[1], args
    assert json.loads(_cli("--state", postgres_url, "status", latest, "--output", "json")[1])


def test_copy_refuses_a_store_onto_itself(tmp_path: Path) -> None:
    code, _, err = _cli("state", "copy", str(tmp_path / "s"), str(tmp_path / "s"))
    assert code == 2 and "one store" in err
