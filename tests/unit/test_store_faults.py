"""The history store when things go wrong: a recorded controller whose pid now belongs to another
process, a store from before start times were recorded, and a damaged store file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.models.results import Deployment, RevisionInfo, Status
from orchestrator.state.base import open_store
from orchestrator.state.process import ProcessIdentity, start_of
from tests.paths import HELLO_WEB


def _deployment(deployment_id: str = "d-ALIVE0001") -> Deployment:
    return Deployment(
        deployment_id,
        "app",
        "grp",
        "gid",
        RevisionInfo("src", "f" * 64, 1, "directory", None),
        "CodeDeployDefault.OneAtATime",
    )


@pytest.fixture
def impostor() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not the controller but whose command line names orchestrator, as
    a process that got a dead controller's pid could."""
    process = subprocess.Popen(["sh", "-c", "sleep 60; :", "orchestrator-impostor"])
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _record_controller(state: Path, pid: int, start: str | None) -> str:
    store = open_store(str(state))
    deployment = _deployment()
    deployment.status = Status.IN_PROGRESS
    store.save(deployment)
    store.close()
    with sqlite3.connect(state / "history.sqlite") as db:
        db.execute("UPDATE deployments SET pid = ?, pid_start = ?", (pid, start))
    db.close()
    return deployment.deployment_id


def _signal_before_term(process: subprocess.Popen[bytes]) -> int:
    """Which signal ended ``process`` when SIGTERM is sent now: a SIGUSR1 sent earlier is
    delivered first (pending standard signals go lowest number first), so -10 means one came."""
    os.kill(process.pid, signal.SIGTERM)
    return -process.wait(timeout=10)


def test_stop_does_not_signal_a_process_that_got_the_controllers_pid(
    tmp_path: Path, impostor: subprocess.Popen[bytes]
) -> None:
    start = start_of(impostor.pid)
    assert start is not None
    boot, ticks = start.rsplit(":", 1)
    wrong = f"{boot}:{int(ticks) - 1}"  # the same pid, started a tick earlier: not this process
    deployment_id = _record_controller(tmp_path, impostor.pid, wrong)
    shown = CliRunner().invoke(cli, ["--state", str(tmp_path), "status", "--output", "json"])
    assert '"interrupted": true' in shown.stdout
    result = CliRunner().invoke(cli, ["--state", str(tmp_path), "stop", deployment_id])
    assert result.exit_code == 0, result.output
    assert "was interrupted" in result.stderr and "recorded as Stopped" in result.stderr
    assert _signal_before_term(impostor) == signal.SIGTERM


def test_stop_does_not_signal_a_controller_that_does_not_catch_sigusr1(
    tmp_path: Path, impostor: subprocess.Popen[bytes]
) -> None:
    """Its default action would end it (a Python program running the deployment through the
    API): the request is only recorded, for it to read."""
    deployment_id = _record_controller(tmp_path, impostor.pid, start_of(impostor.pid))
    stop = ["--state", str(tmp_path), "stop", deployment_id, "--wait", "0"]
    result = CliRunner().invoke(cli, stop)
    assert result.exit_code == 0, result.output
    assert f"stop requested for {deployment_id}" in result.stderr
    assert _signal_before_term(impostor) == signal.SIGTERM  # no SIGUSR1 came first
    store = open_store(str(tmp_path))
    try:
        asked = store.stop_request(deployment_id)
    finally:
        store.close()
    assert asked is not None and (asked.rollback, asked.force) == (False, False)


def test_a_controller_with_its_own_start_time_is_alive_and_signalled(
    impostor: subprocess.Popen[bytes],
) -> None:
    identity = ProcessIdentity(impostor.pid, start_of(impostor.pid))
    assert identity.alive()
    assert identity.send(signal.SIGUSR1)
    assert impostor.wait(timeout=10) == -signal.SIGUSR1
    assert not identity.alive()  # gone, and its pid names no process of that start
    assert not identity.send(signal.SIGUSR1)


def test_a_store_from_before_start_times_were_recorded_still_works(tmp_path: Path) -> None:
    """An old file: no pid_start column. Reading commands read it as it is; the first writer adds
    the column; its records (no start time) are never signalled."""
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE deployments (id TEXT PRIMARY KEY, application TEXT NOT NULL, "
            "group_name TEXT NOT NULL, status TEXT NOT NULL, create_time REAL NOT NULL, "
            "complete_time REAL, pid INTEGER, machine TEXT, document TEXT NOT NULL);"
        )
    db.close()
    store = open_store(str(tmp_path), readonly=True)
    assert store.history() == []
    store.close()
    store = open_store(str(tmp_path))
    store.save(_deployment())
    runner = store.runner("d-ALIVE0001")
    store.close()
    assert runner is not None and runner[0] == ProcessIdentity.current()
    assert not ProcessIdentity(os.getpid(), None).send(signal.SIGUSR1)


def _inventory(tmp_path: Path) -> Path:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "hosts:\n  a: {address: 127.45.250.1, port: 9, tags: {r: x}}\n"
        "applications:\n  app:\n    deployment_groups:\n      g: {tag_sets: [[{key: r}]]}\n"
    )
    return inventory


COMMANDS = {
    "status": ["status"],
    "history": ["history"],
    "logs": ["logs", "d-ANY000001"],
    "stop": ["stop", "d-ANY000001"],
    "rollout": ["rollout", "-a", "app", "-g", "g", "-r", str(HELLO_WEB)],
    "rollback": ["rollback", "-a", "app", "-g", "g"],
    "sync": ["sync", "-a", "app", "-g", "g"],
    "resume": ["rollout", "--resume", "d-ANY000001"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_corrupt_store_is_named_with_what_to_do(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "history.sqlite").write_bytes(b"\x00garbage, not SQLite\xff" * 300)
    result = CliRunner().invoke(
        cli, ["-i", str(_inventory(tmp_path)), "--state", str(state), *command]
    )
    assert result.exit_code == 8, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: the history store {state / 'history.sqlite'} cannot be" in result.stderr
    assert "file is not a database" in result.stderr
    assert "move it aside" in result.stderr
    assert "Traceback" not in result.output


def test_stop_never_signals_a_controller_recorded_without_its_start_time(
    tmp_path: Path, impostor: subprocess.Popen[bytes]
) -> None:
    """A record from before start times were kept: alive by its command line, as before, but
    never signalled, since nothing tells that process apart from another with its pid."""
    deployment_id = _record_controller(tmp_path, impostor.pid, None)
    result = CliRunner().invoke(cli, ["--state", str(tmp_path), "stop", deployment_id])
    assert result.exit_code == 2
    assert "cannot be told apart" in result.stderr
    assert _signal_before_term(impostor) == signal.SIGTERM


def test_a_damaged_record_inside_the_store_is_named_with_what_to_do(tmp_path: Path) -> None:
    """SQLite reads the file, but a deployment's document is not JSON (edited by hand, or
    damaged): exit 8 naming the file, as for a damaged file, never a traceback."""
    state = tmp_path / "state"
    store = open_store(str(state))
    store.close()
    db = sqlite3.connect(state / "history.sqlite")
    db.execute(
        "INSERT INTO deployments (id, application, group_name, status, create_time, document) "
        "VALUES ('d-DAMAGED', 'hello', 'web', 'Succeeded', 1, '{not json')"
    )
    db.commit()
    db.close()
    for args in (["status", "d-DAMAGED"], ["history"]):
        result = CliRunner().invoke(cli, ["--state", str(state), *args])
        assert result.exit_code == 8, (args, result.output)
        assert f"{state / 'history.sqlite'}" in result.output
        assert "damaged" in result.output


def test_a_controller_that_ended_but_is_not_yet_reaped_is_not_alive() -> None:
    """A zombie keeps its pid and its /proc/PID/stat (start time included) until its parent
    reaps it; it runs nothing any more, so it is no live controller."""
    child = subprocess.Popen(["cat"], stdin=subprocess.PIPE)  # runs until its stdin closes
    identity = ProcessIdentity(child.pid, start_of(child.pid))
    assert identity.start is not None
    assert identity.alive()
    assert child.stdin is not None
    child.stdin.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never ended"
        time.sleep(0.01)  # bounded poll of another process's state
    try:
        assert not identity.alive()
        assert not identity.send(signal.SIGUSR1)
    finally:
        child.wait()
