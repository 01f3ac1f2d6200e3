"""Hosts beyond Debian: a host whose only tools are busybox's applets deploys, redeploys, rolls
back, times out and stops hooks like any other; a host with exactly the tools the README lists
deploys; a host without one of them fails at the probe, before anything on it changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.hostproto.scripts import host_tools
from orchestrator.lab import toolbox
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import lab_base, start_lab
from tests.integration.helpers import (
    ctrl_c_twice,
    host_spec,
    rollout,
    run_on,
    start_waiting_rollout,
)
from tests.integration.revisions import script_bundle

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")
EVENTS = ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")


@pytest.fixture
def busybox_lab(tmp_path: Path) -> Iterator[Lab]:
    """Two hosts whose sessions have busybox's applets on their PATH and nothing else, and
    busybox's sh reading their commands."""
    lab = start_lab(tmp_path / "lab", 2, session_path=toolbox.busybox(tmp_path / "busybox"))
    yield lab
    lab.down()


def hooks(version: str) -> dict[str, str]:
    """Every event's hook, each noting that it ran and which `cp` and `sh` it found."""
    return {
        event: f'echo "{event} of {version}: $(command -v cp) $(command -v sh)"\n'
        for event in EVENTS
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def command_lines(lab: Lab, host: str) -> list[str]:
    lines = []
    for pid in lab.host_pids(host):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # ended meanwhile
    return lines


def test_the_lab_host_runs_busybox_sh_with_only_its_applets(busybox_lab: Lab) -> None:
    result = run_on(
        host_spec(busybox_lab, "web-1"),
        'readlink /proc/$$/exe; echo "$PATH"; command -v awk',
    )
    assert result.ok, result
    exe, path, awk = result.stdout.split("\n")[:3]
    assert exe.endswith("/busybox")
    assert path == str(busybox_lab.session_path)
    assert awk in ("awk", f"{path}/awk")


def test_lab_up_busybox_from_the_command_line(tmp_path: Path) -> None:
    directory = tmp_path / "cli-lab"
    options = ["--hosts", "1", "--busybox", "--dir", str(directory), "--base-address", lab_base()]
    command = [sys.executable, "-m", "orchestrator", "lab", "up", *options]
    up = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert up.returncode == 0, up.stderr
    lab = Lab.load(directory)
    try:
        result = run_on(host_spec(lab, "web-1"), "readlink /proc/$$/exe; echo $PATH")
        exe, path = result.stdout.split()
        assert exe.endswith("/busybox") and path == str(directory.resolve() / "busybox")
    finally:
        lab.down()


def test_a_busybox_host_deploys_redeploys_and_rolls_back(busybox_lab: Lab, tmp_path: Path) -> None:
    host = "web-1"
    # A link where the revision puts a file: OVERWRITE replaces the link, never writes through it.
    outside = busybox_lab.host_path(host, "/srv/outside")
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("not the deployment's\n")
    planted = busybox_lab.host_path(host, "/srv/app/index.txt")
    planted.parent.mkdir(parents=True)
    planted.symlink_to("/srv/outside")
    one = script_bundle(
        tmp_path / "1",
        "app",
        hooks("v1"),
        files={"index.txt": "v1\n", "sub/a.txt": "a1\n", "gone.txt": "only in v1\n"},
    )
    first = rollout(busybox_lab, one, *ALL_AT_ONCE, "--file-exists-behavior", "OVERWRITE")
    assert first.exit_code == 0, (first.stderr, first.document)
    assert outside.read_text() == "not the deployment's\n"
    assert not planted.is_symlink() and planted.read_text() == "v1\n"
    tail = first.event(host, "BeforeInstall")["diagnostics"]["logTail"]
    assert f"BeforeInstall of v1: {busybox_lab.session_path}/cp" in tail

    # A hard link to an installed file: the next install replaces the file, never writes into it.
    kept = busybox_lab.host_path(host, "/srv/kept")
    os.link(busybox_lab.host_path(host, "/srv/app/sub/a.txt"), kept)
    two = script_bundle(
        tmp_path / "2", "app", hooks("v2"), files={"index.txt": "v2\n", "sub/a.txt": "a2\n"}
    )
    second = rollout(busybox_lab, two, *ALL_AT_ONCE)
    assert second.exit_code == 0, (second.stderr, second.document)
    assert kept.read_text() == "a1\n"
    assert planted.read_text() == "v2\n"
    assert busybox_lab.host_path(host, "/srv/app/sub/a.txt").read_text() == "a2\n"
    assert not busybox_lab.host_path(host, "/srv/app/gone.txt").exists()
    assert (
        "ApplicationStop of v1" in second.event(host, "ApplicationStop")["diagnostics"]["logTail"]
    )

    # The same revision again keeps what is unchanged (stat's quick check) and uploads nothing.
    again = rollout(busybox_lab, two, *ALL_AT_ONCE)
    assert again.exit_code == 0, (again.stderr, again.document)
    logs = CliRunner().invoke(
        cli, ["logs", again.document["deploymentId"], "--event", "Install", "--host", host]
    )
    assert "installed 0 file(s), kept 2 unchanged" in logs.stdout, logs.output

    # A failing ValidateService, then the automatic rollback to v2.
    three_hooks = {**hooks("v3"), "ValidateService": "echo failing on purpose >&2\nexit 1\n"}
    three = script_bundle(
        tmp_path / "3", "app", three_hooks, files={"index.txt": "v3\n", "sub/a.txt": "a3\n"}
    )
    failed = rollout(busybox_lab, three, *ALL_AT_ONCE, "--auto-rollback")
    assert failed.exit_code == 5
    assert failed.document["rollbackInfo"]["rollbackStatus"] == "Succeeded"
    assert planted.read_text() == "v2\n"
    assert busybox_lab.host_path(host, "/srv/app/sub/a.txt").read_text() == "a2\n"
    assert kept.read_text() == "a1\n"


def test_a_hook_timeout_on_a_busybox_host_ends_its_process_group(
    busybox_lab: Lab, tmp_path: Path
) -> None:
    body = "sleep 300 &\necho $! > /srv/child\necho started\nsleep 300\n"
    bundle = script_bundle(tmp_path, "slow", {"AfterInstall": body}, timeout=2)
    started = time.monotonic()
    result = rollout(busybox_lab, bundle, *ALL_AT_ONCE, "--hook-kill-grace", "1")
    assert time.monotonic() - started < 60
    assert result.exit_code == 5
    event = result.event("web-1", "AfterInstall")
    assert event["diagnostics"]["errorCode"] == "ScriptTimedOut", event
    assert "failed to complete in 2 seconds" in event["diagnostics"]["message"]
    assert "[stdout]started" in event["diagnostics"]["logTail"]
    child = int(busybox_lab.host_path("web-1", "/srv/child").read_text())
    assert not alive(child)


def test_a_stopped_hook_on_a_busybox_host_is_terminated(busybox_lab: Lab, tmp_path: Path) -> None:
    process, events, deployment_id = start_waiting_rollout(busybox_lab, tmp_path, "/srv/go")
    try:
        assert ctrl_c_twice(process, events) == 130
    finally:
        process.kill()
        process.wait()
    assert not [line for line in command_lines(busybox_lab, "web-1") if "AfterInstall.sh" in line]
    shown = CliRunner().invoke(cli, ["status", deployment_id, "--output", "json"])
    assert shown.exit_code == 0, shown.output
    after = json.loads(shown.stdout)["targets"][0]["lifecycleEvents"][4]
    assert after["lifecycleEventName"] == "AfterInstall" and after["status"] == "Failed"
    assert "terminated" in after["diagnostics"]["message"]


def test_a_host_with_exactly_the_listed_tools_deploys(tmp_path: Path) -> None:
    lab = start_lab(tmp_path / "lab", 1, session_path=toolbox.only(tmp_path / "bin", host_tools()))
    try:
        bundle = script_bundle(tmp_path, "app", hooks("v1"), timeout=5)
        result = rollout(lab, bundle)
        assert result.exit_code == 0, (result.stderr, result.document)
        assert lab.host_path("web-1", "/srv/app/index.txt").read_text() == "app\n"
        again = rollout(lab, script_bundle(tmp_path / "2", "app", hooks("v2")))
        assert again.exit_code == 0, (again.stderr, again.document)
    finally:
        lab.down()


def test_a_host_without_a_listed_tool_fails_before_anything_changes(tmp_path: Path) -> None:
    tools = [tool for tool in host_tools() if tool not in ("setsid", "stat")]
    lab = start_lab(tmp_path / "lab", 1, session_path=toolbox.only(tmp_path / "bin", tools))
    try:
        result = rollout(lab, script_bundle(tmp_path, "app", hooks("v1")))
        assert result.exit_code == 5
        target = result.target("web-1")
        assert target["status"] == "Failed"
        message = target["lifecycleEvents"][0]["diagnostics"]["message"]
        assert "setsid" in message and "stat" in message, message
        root = lab.host_path("web-1", lab.deployment_root("web-1"))
        assert not root.exists() or not any(root.iterdir()), list(root.iterdir())
    finally:
        lab.down()
