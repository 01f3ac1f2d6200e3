"""Shared fixtures: an isolated state and cache dir for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.postgres import PostgresServer, postgres_server
from tests.integration.s3_server import S3Server, start_s3_server, stop_s3_server


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ORCHESTRATOR_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("ORCHESTRATOR_INVENTORY", raising=False)
    # A test run inside GitHub Actions: its rollouts write no annotations to the job's log nor
    # summaries to the job's page (the tests that want them set these themselves).
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3-compatible server (moto's) on loopback for the whole run
    (tests/integration/s3_server.py); each test makes buckets of its own."""
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    stop_s3_server(server)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server on loopback for the whole run (tests/integration/postgres.py);
    each test takes a database of its own (``postgres_url``)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh database of this test's on the shared server: its URL, password included."""
    return postgres.new_database()
