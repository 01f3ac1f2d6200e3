"""The PostgreSQL history store with real controllers, real lab hosts and a real server.

Each controller is an ``orchestrator`` process of its own, with its own HOME, XDG dirs and bundle
cache (another machine, as far as orchestrator can tell), sharing one database. A controller that
must look like another machine to the others (``stop`` never signals a pid there; its deployment
is judged by its group lock, not by a pid) runs in a UTS namespace of its own with another host
name. Hooks wait for a file on the host; the tests wait for events, never for time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from tests.integration.haproxy import free_port
from tests.integration.helpers import event_started, wait_for_event, waiting_hook
from tests.integration.postgres import PASSWORD, PostgresServer, postgres_server
from tests.integration.revisions import script_bundle

GO = "/srv/go"
WAIT = 120


@dataclass
class Controller:
    """One controller: a home of its own, the shared database."""

    home: Path
    state: str
    hostname: str | None = None  # another machine's name (a UTS namespace), or this one's

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.home / "state"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "ORCHESTRATOR_STATE": self.state,
            "ORCHESTRATOR_CACHE": str(self.home / "bundles"),
        }

    def command(self, args: list[str]) -> list[str]:
        python = [sys.executable, "-m", "orchestrator", *args]
        if self.hostname is None:
            return python
        return ["unshare", "--uts", "sh", "-c", 'hostname "$1" && shift && exec "$@"', "sh",
                self.hostname, *python]  # fmt: skip

    def start(self, args: list[str], name: str) -> subprocess.Popen[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        with (
            (self.home / f"{name}.out").open("w") as out,
            (self.home / f"{name}.err").open("w") as err,
        ):  # the child keeps its own copies
            return subprocess.Popen(
                self.command(args),
                env=self.env(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
            )

    def run(self, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            self.command(list(args)), env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def stderr(self, name: str) -> str:
        return (self.home / f"{name}.err").read_text()


def _rollout_args(lab: Lab, bundle: Path, events: Path, *extra: str) -> list[str]:
    return ["-i", str(lab.inventory_path), "rollout", "-a", "hello", "-g", "web",
            "-r", str(bundle), "--events", str(events), *extra]  # fmt: skip


def _waiting_bundle(tmp_path: Path, name: str = "slow") -> Path:
    return script_bundle(tmp_path, name, {"AfterInstall": waiting_hook(GO)}, timeout=WAIT)


def _host_lock(lab: Lab, host: str) -> Path:
    gid = load_inventory(lab.inventory_path).group_id("hello", "web")
    return lab.host_path(host, f"{lab.deployment_root(host)}/locks/{gid}")


def _wait(process: subprocess.Popen[str]) -> int:
    try:
        return process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


def release_hooks(lab: Lab) -> None:
    """The waiting hooks (of every host) end."""
    for host in ("web-1", "web-2"):
        lab.host_path(host, GO).write_text("go\n")


@pytest.fixture
def go(small_lab: Lab) -> Iterator[None]:
    """Whatever happens, the waiting hooks end with the test."""
    yield
    release_hooks(small_lab)


def _started(a: Controller, lab: Lab, tmp_path: Path, *extra: str) -> tuple[Any, Path, str]:
    """A rollout by ``a`` waiting in web-1's AfterInstall: (process, events, deployment id)."""
    events = tmp_path / "a-events.ndjson"
    process = a.start(_rollout_args(lab, _waiting_bundle(tmp_path), events, *extra), "a")
    try:
        record = wait_for_event(events, event_started("web-1", "AfterInstall"), timeout=WAIT)
    except BaseException:
        process.kill()
        raise
    return process, events, str(record["deploymentId"])


def test_two_controllers_share_the_history_and_one_lock_per_group(
    small_lab: Lab, tmp_path: Path, postgres_url: str, go: None
) -> None:
    a, b = Controller(tmp_path / "a", postgres_url), Controller(tmp_path / "b", postgres_url)
    process, _, deployment_id = _started(a, small_lab, tmp_path)
    bundle = script_bundle(tmp_path, "other", {})
    refused = b.run(*_rollout_args(small_lab, bundle, tmp_path / "b.ndjson", "--lock-wait", "1"))
    assert refused.returncode == 7, refused.stderr
    assert f"hello/web is locked by {deployment_id}" in refused.stderr
    assert f"pid {process.pid}" in refused.stderr and "@" in refused.stderr
    assert not small_lab.host_path("web-1", "/srv/other").exists()  # nothing started
    shown = b.run("status", deployment_id, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    running = json.loads(shown.stdout)
    assert running["status"] == "InProgress" and "interrupted" not in running
    listed = b.run("history", "--output", "json")
    assert [d["deploymentId"] for d in json.loads(listed.stdout)] == [deployment_id]
    release_hooks(small_lab)
    assert _wait(process) == 0, a.stderr("a")
    done = b.run("status", deployment_id, "--output", "json")
    assert json.loads(done.stdout)["status"] == "Succeeded"
    logs = b.run("logs", deployment_id, "--host", "web-1", "--event", "AfterInstall")
    assert "done waiting" in logs.stdout
    assert PASSWORD not in shown.stdout + listed.stdout + done.stdout + a.stderr("a")
    assert PASSWORD not in refused.stderr + logs.stdout
    again = b.run(*_rollout_args(small_lab, bundle, tmp_path / "b2.ndjson"))
    assert again.returncode == 0, again.stderr  # the lock is free again


def test_of_several_controllers_starting_at_once_exactly_one_wins(
    small_lab: Lab, tmp_path: Path, postgres_url: str, go: None
) -> None:
    bundle = _waiting_bundle(tmp_path)
    controllers = [Controller(tmp_path / f"c{i}", postgres_url) for i in range(4)]
    processes = [
        c.start(_rollout_args(small_lab, bundle, tmp_path / f"c{i}.ndjson"), "rollout")
        for i, c in enumerate(controllers)
    ]
    try:
        deadline = time.monotonic() + WAIT
        while sum(p.poll() is not None for p in processes) < len(processes) - 1:
            assert time.monotonic() < deadline, "the losers did not all exit"
            time.sleep(0.1)  # polling the processes' exits, under the deadline above
        losers = [index for index, p in enumerate(processes) if p.poll() is not None]
        for index in losers:
            assert processes[index].returncode == 7, controllers[index].stderr("rollout")
            assert "hello/web is locked by d-" in controllers[index].stderr("rollout")
        (winner,) = set(range(len(processes))) - set(losers)
        release_hooks(small_lab)
        assert _wait(processes[winner]) == 0, controllers[winner].stderr("rollout")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)  # reaped here, not found running by a later test


def test_a_controller_killed_mid_rollout_is_taken_over_by_another(
    small_lab: Lab, tmp_path: Path, postgres_url: str, go: None
) -> None:
    """SIGKILL: PostgreSQL ends its connection and releases its advisory lock; the other
    controller (another machine) sees the deployment interrupted and takes the group at once,
    but the host locks the dead one left only once their heartbeat is stale: from another
    machine a free group lock does not prove its controller gone (only its connection may have
    died, while its hooks run), so it waits as for any holder that stopped heartbeating."""
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, _, deployment_id = _started(a, small_lab, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    release_hooks(small_lab)  # its hook ends while nobody watches
    shown = b.run("status", deployment_id, "--output", "json")
    interrupted = json.loads(shown.stdout)
    assert interrupted["status"] == "InProgress" and interrupted["interrupted"] is True
    assert _host_lock(small_lab, "web-1").exists()  # the dead controller's, fresh
    following = script_bundle(tmp_path, "next", {})
    refused = b.run(*_rollout_args(small_lab, following, tmp_path / "b0.ndjson"))
    assert refused.returncode == 7, refused.stderr
    assert deployment_id in refused.stderr  # the hosts' locks name it, still fresh
    # Stale LOCK_TTL_SECONDS (120) after its last heartbeat: then taken over.
    taken = b.run(
        *_rollout_args(small_lab, following, tmp_path / "b.ndjson", "--lock-wait", "200"),
        timeout=300,
    )
    assert taken.returncode == 0, taken.stderr
    assert small_lab.host_path("web-2", "/srv/next/index.txt").exists()
    notices = (tmp_path / "b.ndjson").read_text()
    assert f"took over a stale lock held by {deployment_id}" in notices


def test_another_controller_resumes_a_deployment_whose_controller_died(
    small_lab: Lab, tmp_path: Path, postgres_url: str, go: None
) -> None:
    """The same deployment, completed by another controller from the shared history (its own
    bundle cache rebuilt from the revision's source)."""
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, _, deployment_id = _started(a, small_lab, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    release_hooks(small_lab)
    resumed = b.run("-i", str(small_lab.inventory_path), "rollout", "--resume", deployment_id)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(b.run("status", deployment_id, "--output", "json").stdout)
    assert done["status"] == "Succeeded" and "interrupted" not in done
    assert {t["status"] for t in done["targets"]} == {"Succeeded"}


def test_stop_from_one_controller_stops_a_rollout_on_another_machine(
    small_lab: Lab, tmp_path: Path, postgres_url: str, go: None
) -> None:
    a = Controller(tmp_path / "a", postgres_url, hostname="ctl-a")
    b = Controller(tmp_path / "b", postgres_url)
    process, events, deployment_id = _started(a, small_lab, tmp_path)
    inventory = ["-i", str(small_lab.inventory_path)]
    kept = b.run(*inventory, "lock", "release", "-a", "hello", "-g", "web", "--force")
    assert kept.returncode == 7, kept.stderr  # a live holder elsewhere keeps its locks
    assert f"deployment {deployment_id} of hello/web runs on ctl-a" in kept.stderr
    assert _host_lock(small_lab, "web-1").exists()
    asked = b.run("stop", deployment_id, "--wait", "0")
    assert asked.returncode == 0, asked.stderr
    assert f"stop requested for {deployment_id}" in asked.stderr
    # No SIGUSR1 crossed machines: the rollout read the request from the database.
    wait_for_event(events, lambda r: r["type"] == "Notice" and "stopping" in r["message"])
    release_hooks(small_lab)  # the running hook finishes
    assert _wait(process) == 6, a.stderr("a")
    stopped = json.loads(b.run("status", deployment_id, "--output", "json").stdout)
    assert stopped["status"] == "Stopped"
    assert stopped["errorInformation"]["code"] == "MANUAL_STOP"
    assert not _host_lock(small_lab, "web-1").exists()  # released on the way out


@pytest.mark.parametrize("how", ["terminate", "server-stop"])
def test_a_database_that_goes_away_mid_rollout_stops_it_as_a_local_fault(
    how: str, small_lab: Lab, tmp_path: Path, go: None
) -> None:
    with postgres_server() as server:
        _database_goes_away(how, server, small_lab, tmp_path)


def _database_goes_away(how: str, server: PostgresServer, lab: Lab, tmp_path: Path) -> None:
    url = server.new_database()
    database = url.rsplit("/", 1)[1]
    a, b = Controller(tmp_path / "a", url), Controller(tmp_path / "b", url)
    process, events, deployment_id = _started(a, lab, tmp_path)
    if how == "terminate":
        assert server.terminate(database) >= 2  # its history and its group lock connections
    else:
        server.stop()
    wait_for_event(events, lambda r: r["type"] == "Notice" and "stopping" in r["message"])
    release_hooks(lab)
    assert _wait(process) == 8, a.stderr("a")
    stderr = a.stderr("a")
    assert f"the history store 127.0.0.1:{server.port}/{database}" in stderr
    assert "the database went away" in stderr and PASSWORD not in stderr
    assert not _host_lock(lab, "web-1").exists()  # the hosts were left consistent
    assert not lab.host_path("web-2", "/srv/slow").exists()  # no new host was started
    if how != "terminate":
        server.start()
    shown = json.loads(b.run("status", deployment_id, "--output", "json").stdout)
    assert shown["status"] == "InProgress" and shown["interrupted"] is True


def test_an_unusable_database_at_the_start_touches_no_host(
    small_lab: Lab, tmp_path: Path, postgres: PostgresServer
) -> None:

    port = postgres.port
    cases = {
        "unreachable": (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/db",
                        "Connection refused"),
        "wrong password": (f"postgresql://postgres:wrong-{PASSWORD}@127.0.0.1:{port}/postgres",
                           "password authentication failed"),
        "missing database": (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/nope",
                             'database "nope" does not exist'),
    }  # fmt: skip
    bundle = script_bundle(tmp_path, "never", {})
    for name, (url, reason) in cases.items():
        result = Controller(tmp_path / name.replace(" ", "-"), url).run(
            *_rollout_args(small_lab, bundle, tmp_path / "x.ndjson")
        )
        assert result.returncode == 8, (name, result.stderr)
        where = url.split("@", 1)[1].replace("postgres", "").rstrip("/")
        assert f"the history store {where}" in result.stderr, (name, result.stderr)
        assert reason in result.stderr, (name, result.stderr)
        assert PASSWORD not in result.stderr + result.stdout, name
        assert "Traceback" not in result.stderr
    assert not small_lab.host_path("web-1", "/srv/never").exists()
    assert not _host_lock(small_lab, "web-1").exists()


def test_libpq_sources_give_the_password(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.new_database().replace(f":{PASSWORD}@", "@")
    controller = Controller(tmp_path / "c", url)
    refused = controller.run("history")
    assert refused.returncode == 8 and "password" in refused.stderr
    os.environ["PGPASSWORD"] = PASSWORD
    try:
        assert controller.run("history").returncode == 0
    finally:
        del os.environ["PGPASSWORD"]
    passfile = tmp_path / "c" / ".pgpass"
    passfile.write_text(f"127.0.0.1:{postgres.port}:*:postgres:{PASSWORD}\n")
    passfile.chmod(0o600)
    assert controller.run("history").returncode == 0  # ~/.pgpass in its HOME


def test_the_history_never_holds_the_password(
    small_lab: Lab, tmp_path: Path, postgres_url: str
) -> None:
    result = Controller(tmp_path / "c", postgres_url).run(
        *_rollout_args(small_lab, script_bundle(tmp_path, "plain", {}), tmp_path / "e.ndjson")
    )
    assert result.returncode == 0, result.stderr
    with psycopg.connect(postgres_url) as db:
        for table in ("deployments", "lifecycle_events", "group_locks"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # type: ignore[arg-type]
            assert PASSWORD not in repr(rows), table
    assert PASSWORD not in (tmp_path / "e.ndjson").read_text() + result.stderr + result.stdout
