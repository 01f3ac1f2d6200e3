"""The Store seam (``state/base.py``): what every backend does, and ``open_store`` choosing one.

The contract tests run against each backend ``STORES`` opens: SQLite (a directory, a URL) and
PostgreSQL (a database of the test's own on the real server the suite starts,
``tests/integration/postgres.py``); a new backend adds itself there and passes the same tests.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.errors import LockHeld, StoreURLError
from orchestrator.events import DeploymentFinished, DeploymentStarted, LifecycleEventFinished
from orchestrator.models.results import Deployment, LifecycleEvent, RevisionInfo, Status, Target
from orchestrator.state.base import GroupLock, LogEntry, RecordedStop, Runner, Store, open_store
from orchestrator.state.location import state_location, store_scheme
from orchestrator.state.process import ProcessIdentity
from orchestrator.state.sqlite import SqliteStore

STORES: dict[str, Callable[[Path, pytest.FixtureRequest], str]] = {
    "sqlite-directory": lambda tmp, _: str(tmp / "state"),
    "sqlite-url": lambda tmp, _: f"sqlite://{tmp}/h.db",
    "postgresql": lambda _, request: str(request.getfixturevalue("postgres_url")),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(STORES[request.param](tmp_path, request))
    yield opened
    opened.close()


def _deployment(deployment_id: str, create_time: float, group: str = "web") -> Deployment:
    deployment = Deployment(
        deployment_id,
        "hello",
        group,
        f"gid-{group}",
        RevisionInfo("src", deployment_id.lower() * 8, 1, "directory"),
        "CodeDeployDefault.OneAtATime",
        create_time=create_time,
    )
    event = LifecycleEvent("AfterInstall")
    deployment.targets["h1"] = Target("h1", "127.0.0.1", [event])
    return deployment


def test_a_store_gives_back_the_models_it_recorded(store: Store) -> None:
    first, second = _deployment("d-A", 1.0), _deployment("d-B", 2.0, group="api")
    first.status = Status.SUCCEEDED
    store.save(first)
    store.save(second)
    got = store.get("d-A")
    assert isinstance(got, Deployment) and got.status is Status.SUCCEEDED
    assert got.to_document() == first.to_document()
    latest = store.get()
    assert latest is not None and latest.deployment_id == "d-B"
    assert store.get("d-NONE") is None
    assert [d.deployment_id for d in store.history()] == ["d-B", "d-A"]
    assert [d.deployment_id for d in store.history("hello", "web")] == ["d-A"]
    assert [d.deployment_id for d in store.history(limit=1)] == ["d-B"]
    assert all(isinstance(d, Deployment) and d.targets for d in store.history())


def test_last_successful_is_the_newest_succeeded_before_a_deployment(store: Store) -> None:
    for deployment_id, created, status in (
        ("d-OLD", 1.0, Status.SUCCEEDED),
        ("d-MID", 2.0, Status.SUCCEEDED),
        ("d-BAD", 3.0, Status.FAILED),
    ):
        deployment = _deployment(deployment_id, created)
        deployment.status = status
        store.save(deployment)
    newest = store.last_successful("hello", "web")
    assert newest is not None and newest.deployment_id == "d-MID"
    older = store.last_successful("hello", "web", before="d-MID")
    assert older is not None and older.deployment_id == "d-OLD"
    assert store.last_successful("hello", "api") is None


def test_as_an_event_sink_a_store_keeps_a_running_deployments_events_and_outputs(
    store: Store,
) -> None:
    deployment = _deployment("d-RUN", 1.0)
    deployment.status = Status.IN_PROGRESS
    target = deployment.targets["h1"]
    store(DeploymentStarted(deployment))
    event = target.event("AfterInstall")
    event.status, event.output = Status.SUCCEEDED, "[stdout]hi\n"
    store(LifecycleEventFinished(deployment, target, event))
    running = store.get("d-RUN")  # saved before the event: the event's own record shows
    assert running is not None and not running.interrupted  # this very process runs it
    assert running.targets["h1"].status is Status.IN_PROGRESS
    assert running.targets["h1"].event("AfterInstall").status is Status.SUCCEEDED
    assert store.logs("d-RUN") == [LogEntry("h1", "AfterInstall", "[stdout]hi\n")]
    assert store.logs("d-RUN", host="h2") == [] and store.logs("d-RUN", event="Install") == []
    deployment.status = Status.SUCCEEDED
    store(DeploymentFinished(deployment))
    done = store.get("d-RUN")
    assert done is not None and done.status is Status.SUCCEEDED


def test_stop_requests_runners_and_mark_stopped(store: Store) -> None:
    deployment = _deployment("d-STOP", 1.0)
    deployment.status = Status.IN_PROGRESS
    store.save(deployment)
    assert store.stop_request("d-STOP") is None
    store.request_stop("d-STOP", rollback=True, force=False)
    asked = store.stop_request("d-STOP")
    assert asked is not None and asked[:2] == RecordedStop(rollback=True, force=False)[:2]
    assert abs(asked.requested - time.time()) < 60  # when: a request made again is a new one
    runner = store.runner("d-STOP")
    assert runner == Runner(ProcessIdentity.current(), socket.gethostname())
    assert runner.runs_here() and store.controller_alive("d-STOP") is True
    assert store.runner("d-NONE") is None and store.controller_alive("d-NONE") is None
    store.mark_stopped("d-STOP", "stopped after its orchestrator process was gone")
    stopped = store.get("d-STOP")
    assert stopped is not None and stopped.status is Status.STOPPED
    assert (stopped.error_code, stopped.error_message) == (
        "MANUAL_STOP",
        "stopped after its orchestrator process was gone",
    )
    store.mark_stopped("d-NONE", "nothing to mark")  # no such deployment: nothing happens


def test_a_group_lock_excludes_a_second_holder_and_names_the_first(store: Store) -> None:
    first: GroupLock = store.group_lock("hello", "web", "gid-web")
    second = store.group_lock("hello", "web", "gid-web")
    other = store.group_lock("hello", "api", "gid-api")
    assert first.holder() is None
    first.acquire("d-FIRST")
    try:
        holder = second.holder()
        assert holder is not None and holder.deployment == "d-FIRST"
        assert holder.pid == os.getpid()
        with pytest.raises(LockHeld, match="hello/web is locked by d-FIRST"):
            second.acquire("d-SECOND")
        other.acquire("d-OTHER")  # another group: its own lock
        other.release()
    finally:
        first.release()
    assert second.holder() is None
    second.acquire("d-SECOND")
    second.release()


# -- choosing the backend -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["", "rel/dir", "/abs/h.db", "sqlite:///abs/h.db", "sqlite://~/h.db", "sqlite:rel/h.db",
     "SQLite:///abs/h.db", "dir:with/colon"],
)  # fmt: skip
def test_paths_and_sqlite_urls_are_sqlite(url: str) -> None:
    assert store_scheme(url or None) == "sqlite"


@pytest.mark.parametrize(
    ("url", "history"),
    [
        ("sqlite:rel/h.db", "{cwd}/rel/h.db"),
        ("sqlite:rel/history", "{cwd}/rel/history"),  # a URL names the file itself
        ("sqlite:/abs/h.db", "/abs/h.db"),
        ("SQLITE:///abs/h.db", "/abs/h.db"),
        ("dir:with/colon", "{cwd}/dir:with/colon/history.sqlite"),  # a path, as it always was
    ],
)
def test_sqlite_url_forms(
    url: str, history: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    location = state_location(url)
    assert location.history == Path(history.replace("{cwd}", str(tmp_path)))
    assert location.directory == location.history.parent


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("foo://", "foo"),
        ("MySQL://x", "mysql"),
        ("s3+https://bucket/key", "s3+https"),
    ],
)
def test_an_unknown_scheme_is_an_error_naming_it_and_the_supported_ones(
    url: str, scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for parse in (store_scheme, state_location, open_store):
        with pytest.raises(
            StoreURLError, match=rf"scheme '{re.escape(scheme)}'.*supported: sqlite, postgresql"
        ):
            parse(url)
    with pytest.raises(ValueError, match="supported"):  # also a ValueError, as it always was
        open_store(url, readonly=True)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_open_store_opens_sqlite_where_the_state_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    reading = open_store("sqlite:h.db", readonly=True)
    assert isinstance(reading, SqliteStore) and reading.history() == []
    reading.close()
    assert not (tmp_path / "h.db").exists()  # a reader creates nothing
    writing = open_store("sqlite:h.db")
    assert isinstance(writing, SqliteStore) and writing.location == str(tmp_path / "h.db")
    writing.close()
    assert (tmp_path / "h.db").is_file()
    lock = open_store(str(tmp_path / "state")).group_lock("hello", "web", "gid")
    lock.acquire("d-X")
    lock.release()
    assert (tmp_path / "state" / "locks" / "gid.lock").is_file()  # beside the history


def test_the_store_as_a_sink_knows_every_event_type(store: Store) -> None:
    """Its dispatch ends in assert_never: an event type it does not name is a bug it reports
    (mypy at check time), never one it silently drops."""
    with pytest.raises(AssertionError):
        store(object())  # type: ignore[arg-type]
