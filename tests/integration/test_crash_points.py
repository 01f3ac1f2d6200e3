"""A rollout SIGKILLed at each kind of point (after connecting, in the middle of an upload, in the
middle of a hook, while it writes the history), each reached deterministically: a hook that
waits while a file on its host names its event, a TCP relay that stops passing the controller's
bytes in the middle of the bundle, the history store's write lock held by the test. After each
kill: ``status`` reads the history, no host holds an installed file its cleanup record does not
list, and ``rollout --resume`` completes the deployment, which leaves the hosts consistent."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from orchestrator.state.sqlite import store_path
from tests.integration.helpers import start_orchestrator
from tests.integration.revisions import script_bundle

WAIT = 60.0  # seconds: a bound no healthy step comes near
HOLD = "/srv/hold"  # on a host: the hooks of the events it names wait until it no longer does
DESTINATION = "/srv/app"
# Waits while HOLD names this event, after saying so; bounded like every wait here.
HOOK = f"""\
if grep -qx "$LIFECYCLE_EVENT" {HOLD} 2>/dev/null; then
    touch "/srv/waiting-$LIFECYCLE_EVENT"
    i=0
    while grep -qx "$LIFECYCLE_EVENT" {HOLD} && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
fi
"""


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT}s"
        time.sleep(0.02)  # watching another process's files: polled, bounded


class Relay:
    """A TCP relay to a host's sshd that passes the controller's first ``limit`` bytes, then
    stops reading them: the controller is left in the middle of whatever it was sending."""

    def __init__(self, address: str, port: int, limit: int) -> None:
        self.target = (address, port)
        self.limit = limit
        self.passed = 0
        self.paused = threading.Event()
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target, timeout=WAIT)
                server.settimeout(None)
                self.sockets += [client, server]
                threading.Thread(
                    target=self._pump, args=(client, server, True), daemon=True
                ).start()
                threading.Thread(
                    target=self._pump, args=(server, client, False), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if counted:
                    room = self.limit - self.passed
                    sink.sendall(data[: max(room, 0)])
                    self.passed += min(len(data), max(room, 0))
                    if self.passed >= self.limit:
                        self.paused.set()
                        return  # reads no more: the controller's window and buffers fill up
                else:
                    sink.sendall(data)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def crash_lab(small_lab: Lab) -> Iterator[Lab]:
    yield small_lab


def _host_file(lab: Lab, host: str, path: str) -> Path:
    return lab.host_path(host, path)


def _files_not_recorded(lab: Lab) -> dict[str, set[str]]:
    """Per host: what is installed under DESTINATION that its cleanup record does not list."""
    gid = load_inventory(lab.inventory_path).group_id("hello", "web")
    strays = {}
    for host in lab.hosts:
        cleanup = lab.host_path(
            host.name, f"{lab.deployment_root(host.name)}/deployment-instructions/{gid}-cleanup"
        )
        recorded = set(cleanup.read_text().splitlines()) if cleanup.exists() else set()
        root = lab.host_path(host.name, DESTINATION)
        installed = (
            {f"{DESTINATION}/{path.relative_to(root)}" for path in root.rglob("*")}
            if root.exists()
            else set()
        )
        strays[host.name] = installed - recorded
    return strays


def _status(deployment_id: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["status", deployment_id, "--output", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


class Crasher:
    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        self.lab = lab
        self.tmp_path = tmp_path
        self.count = 0

    def revision(self, big: bool = False) -> tuple[Path, str]:
        self.count += 1
        version = f"version {self.count}\n"
        files = {"version.txt": version, "conf/app.conf": f"release={self.count}\n"}
        if big:  # 8 MB that compress to nothing less: the upload takes a while
            files["data/blob.txt"] = secrets.token_hex(4 * 1024 * 1024)
        hooks = {"ApplicationStop": HOOK, "AfterInstall": HOOK}
        bundle = script_bundle(self.tmp_path / f"r{self.count}", "app", hooks, files=files)
        return bundle, version

    def hold(self, host: str, event: str | None) -> None:
        _host_file(self.lab, host, HOLD).write_text(f"{event}\n" if event else "")

    def start(self, bundle: Path, inventory: Path | None = None) -> subprocess.Popen[bytes]:
        for host in self.lab.hosts:
            for waiting in self.lab.host_path(host.name, "/srv").glob("waiting-*"):
                waiting.unlink()
        self.events = self.tmp_path / f"events-{self.count}.ndjson"
        args = ["-i", str(inventory or self.lab.inventory_path), "rollout", "-a", "hello"]
        args += ["-g", "web", "-r", str(bundle), "--events", str(self.events)]
        return start_orchestrator(args, self.tmp_path / f"run-{self.count}")

    def deployment_id(self) -> str:
        _until(lambda: self.events.exists() and self.events.read_text().strip() != "", "events")
        return str(json.loads(self.events.read_text().splitlines()[0])["deploymentId"])

    def progress(self, host: str) -> list[str]:
        """web-1's lifecycle events as the killed rollout reported them: "Started X" or "X"."""
        steps = []
        for line in self.events.read_text().splitlines():
            record = json.loads(line)
            if record.get("host") == host and record["type"].startswith("LifecycleEvent"):
                name = record["lifecycleEvent"]["lifecycleEventName"]
                steps.append(name if record["type"].endswith("Finished") else f"Started {name}")
        return steps

    def kill(self, process: subprocess.Popen[bytes]) -> str:
        deployment_id = self.deployment_id()
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=WAIT) == -signal.SIGKILL
        return deployment_id

    def check_and_resume(self, deployment_id: str, version: str) -> None:
        interrupted = _status(deployment_id)
        assert interrupted["status"] == "InProgress" and interrupted["interrupted"] is True
        assert _files_not_recorded(self.lab) == {h.name: set() for h in self.lab.hosts}
        for host in self.lab.hosts:
            self.hold(host.name, None)
        resumed = CliRunner().invoke(
            cli,
            ["-i", str(self.lab.inventory_path), "rollout", "--resume", deployment_id,
             "--output", "json"],
        )  # fmt: skip
        assert resumed.exit_code == 0, resumed.output
        document = json.loads(resumed.stdout)
        assert document["deploymentId"] == deployment_id
        assert [t["status"] for t in document["targets"]] == ["Succeeded", "Succeeded"]
        assert _status(deployment_id)["status"] == "Succeeded"
        assert _files_not_recorded(self.lab) == {h.name: set() for h in self.lab.hosts}
        for host in self.lab.hosts:
            assert _host_file(self.lab, host.name, f"{DESTINATION}/version.txt").read_text() == (
                version
            )


def _relayed_inventory(lab: Lab, relay: Relay, tmp_path: Path) -> Path:
    """The lab's inventory with web-1 reached through the relay (its key known there too)."""
    web1 = lab.host("web-1")
    known = tmp_path / "known_hosts"
    lines = lab.known_hosts.read_text().splitlines()
    key = next(line for line in lines if line.startswith(f"[{web1.address}]:{web1.port} "))
    known.write_text("\n".join([*lines, key.replace(f":{web1.port} ", f":{relay.port} ", 1)]))
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["defaults"]["ssh"]["known_hosts"] = str(known)
    data["hosts"]["web-1"]["port"] = relay.port
    inventory = tmp_path / "relayed.yaml"
    inventory.write_text(yaml.safe_dump(data))
    return inventory


def test_a_rollout_killed_anywhere_is_read_resumed_and_leaves_no_stray_file(
    crash_lab: Lab, tmp_path: Path
) -> None:
    lab = crash_lab
    crasher = Crasher(lab, tmp_path)
    bundle, _ = crasher.revision()
    first = crasher.start(bundle)
    assert first.wait(timeout=WAIT * 2) == 0, (tmp_path / "run-1" / "stderr").read_text()

    # After connecting: hosts probed and locked, web-1 in its first event, nothing changed yet.
    bundle, version = crasher.revision()
    crasher.hold("web-1", "ApplicationStop")
    process = crasher.start(bundle)
    _until(lambda: _host_file(lab, "web-1", "/srv/waiting-ApplicationStop").exists(), "stop")
    deployment_id = crasher.kill(process)
    assert crasher.progress("web-1") == ["Started ApplicationStop"]
    crasher.check_and_resume(deployment_id, version)

    # In the middle of the upload: the relay passes 2 MB of web-1's connection, far more than
    # connecting and the programs take and far less than the 8 MB bundle.
    bundle, version = crasher.revision(big=True)
    relay = Relay(lab.host("web-1").address, lab.host("web-1").port, 2 * 1024 * 1024)
    try:
        process = crasher.start(bundle, _relayed_inventory(lab, relay, tmp_path))
        assert relay.paused.wait(WAIT), "the upload never reached the relay's limit"
        deployment_id = crasher.kill(process)
    finally:
        relay.close()
    assert crasher.progress("web-1")[-1] == "Started DownloadBundle"
    gid = load_inventory(lab.inventory_path).group_id("hello", "web")
    directory = f"{lab.deployment_root('web-1')}/{gid}/{deployment_id}"
    assert not _host_file(lab, "web-1", f"{directory}/bundle.sha256").exists()
    crasher.check_and_resume(deployment_id, version)

    # In the middle of a hook, after Install: the new files are on web-1 and recorded.
    bundle, version = crasher.revision()
    crasher.hold("web-1", "AfterInstall")
    process = crasher.start(bundle)
    _until(lambda: _host_file(lab, "web-1", "/srv/waiting-AfterInstall").exists(), "hook")
    deployment_id = crasher.kill(process)
    assert crasher.progress("web-1")[-2:] == ["Install", "Started AfterInstall"]
    crasher.check_and_resume(deployment_id, version)

    # While it records: the hook has ended on web-1, and the history's write lock is the test's,
    # so the controller is stuck in writing that event's end when it is killed.
    bundle, version = crasher.revision()
    crasher.hold("web-1", "AfterInstall")
    process = crasher.start(bundle)
    _until(lambda: _host_file(lab, "web-1", "/srv/waiting-AfterInstall").exists(), "hook")
    deployment_id = crasher.deployment_id()
    history = sqlite3.connect(store_path(os.environ["ORCHESTRATOR_STATE"]), isolation_level=None)
    try:
        history.execute("BEGIN IMMEDIATE")
        crasher.hold("web-1", None)
        done = f"{lab.deployment_root('web-1')}/{gid}/{deployment_id}/hooks/AfterInstall.0.done"
        _until(lambda: _host_file(lab, "web-1", done).exists(), "the hook's end")
        crasher.kill(process)
        history.execute("ROLLBACK")
    finally:
        history.close()
    # The store is the first to hear of each event: the events file never heard of its end.
    assert crasher.progress("web-1")[-1] == "Started AfterInstall"
    crasher.check_and_resume(deployment_id, version)


def test_a_history_store_that_fills_up_mid_rollout_stops_it_and_resume_completes_it(
    small_lab: Lab, tmp_path: Path
) -> None:
    """The state dir on a 2 MiB tmpfs in a mount namespace of the test's (entered by each
    command), filled by the test while web-1 waits in AfterInstall: the store's next write fails,
    the rollout stops (exit 8, a local fault) saying what failed and what to do; once there is room, `status`
    shows the deployment interrupted and `rollout --resume` completes it."""
    state = tmp_path / "state"
    state.mkdir()
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=2m tmpfs "$1" && echo mounted && exec sleep 600', "sh",
         str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "mounted\n"
        inside = ["nsenter", "-t", str(holder.pid), "-m", "--", sys.executable, "-m"]
        orchestrator = [*inside, "orchestrator", "--state", str(state)]
        seen_state = Path(f"/proc/{holder.pid}/root{state}")  # the tmpfs, from out here
        crasher = Crasher(small_lab, tmp_path)
        bundle, version = crasher.revision()
        crasher.hold("web-1", "AfterInstall")
        events = tmp_path / "events.ndjson"
        process = subprocess.Popen(
            [*orchestrator, "-i", str(small_lab.inventory_path), "rollout", "-a", "hello",
             "-g", "web", "-r", str(bundle), "--events", str(events)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        _until(lambda: _host_file(small_lab, "web-1", "/srv/waiting-AfterInstall").exists(), "hook")
        with (seen_state / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        crasher.hold("web-1", None)
        _, stderr = process.communicate(timeout=WAIT)
        assert process.returncode == 8, stderr  # a local fault: the history could not be written
        assert f"cannot write the history store {state / 'history.sqlite'}" in stderr
        assert "database or disk is full" in stderr and "make room" in stderr
        deployment_id = str(json.loads(events.read_text().splitlines()[0])["deploymentId"])
        (seen_state / "filler").unlink()

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*orchestrator, *args], capture_output=True, text=True, timeout=WAIT, check=False
            )

        shown = run("status", deployment_id, "--output", "json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["interrupted"] is True
        resumed = run("-i", str(small_lab.inventory_path), "rollout", "--resume", deployment_id)
        assert resumed.returncode == 0, resumed.stderr
        assert (
            json.loads(run("status", deployment_id, "--output", "json").stdout)["status"]
            == "Succeeded"
        )
        assert _files_not_recorded(small_lab) == {h.name: set() for h in small_lab.hosts}
        for host in small_lab.hosts:
            assert _host_file(small_lab, host.name, f"{DESTINATION}/version.txt").read_text() == (
                version
            )
    finally:
        holder.kill()
        holder.wait(timeout=WAIT)
        if holder.stdout is not None:
            holder.stdout.close()
