"""Hooks on real hosts: timeouts, background children, environment, runas, permissions, faults."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.lab.fleet import Lab
from orchestrator.lab.sshd import generate_key
from orchestrator.models.inventory import load_inventory
from tests.integration.helpers import engine_run, rollout, waiting_hook
from tests.integration.revisions import hello_web, script_bundle

RUNAS_USER = "orchestrator-test"
ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")


def test_a_hook_that_overruns_its_timeout_is_terminated(small_lab: Lab, tmp_path: Path) -> None:
    bundle = script_bundle(
        tmp_path, "slow", {"AfterInstall": "echo started\nsleep 300\n"}, timeout=2
    )
    started = time.monotonic()
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert time.monotonic() - started < 60
    assert result.exit_code == 5
    event = result.event("web-1", "AfterInstall")
    assert event["diagnostics"]["errorCode"] == "ScriptTimedOut"
    assert "failed to complete in 2 seconds" in event["diagnostics"]["message"]
    assert "[stdout]started" in event["diagnostics"]["logTail"]
    assert [e["status"] for e in result.target("web-1")["lifecycleEvents"]][-3:] == [
        "Failed",
        "Skipped",
        "Skipped",
    ]


def test_a_hook_that_ignores_sigterm_is_killed_after_the_grace(
    small_lab: Lab, tmp_path: Path
) -> None:
    body = "trap '' TERM\necho stubborn\nwhile :; do sleep 1; done\n"
    bundle = script_bundle(tmp_path, "stubborn", {"ApplicationStart": body}, timeout=1)
    started = time.monotonic()
    result = rollout(small_lab, bundle, *ALL_AT_ONCE, "--hook-kill-grace", "1")
    assert time.monotonic() - started < 60
    assert result.event("web-2", "ApplicationStart")["diagnostics"]["errorCode"] == "ScriptTimedOut"
    leftovers = subprocess.run(
        ["pgrep", "-f", "while :; do sleep 1"], check=False, capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""


def test_a_background_child_holding_the_output_does_not_hang(
    small_lab: Lab, tmp_path: Path
) -> None:
    bundle = script_bundle(
        tmp_path, "daemon", {"ApplicationStart": "sleep 300 &\necho started child\n"}
    )
    started = time.monotonic()
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert time.monotonic() - started < 30
    assert result.exit_code == 0, result.stderr
    event = result.event("web-1", "ApplicationStart")
    assert event["status"] == "Succeeded"
    assert any("a process it started still runs" in w for w in event["warnings"])


def test_the_environment_a_hook_sees(small_lab: Lab, tmp_path: Path) -> None:
    body = (
        'env | grep -E "^(LIFECYCLE_EVENT|DEPLOYMENT_ID|APPLICATION_NAME|DEPLOYMENT_GROUP_NAME|'
        'DEPLOYMENT_GROUP_ID|BUNDLE_SHA256|ORCHESTRATOR_[A-Z_]*)=" | sort > /srv/env-$LIFECYCLE_EVENT\n'
        'pwd > /srv/cwd\nread line || echo "stdin is empty" > /srv/stdin\n'
    )
    bundle = script_bundle(tmp_path, "env", {"BeforeInstall": body, "ValidateService": body})
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    deployment_id = result.document["deploymentId"]
    seen = dict(
        line.split("=", 1)
        for line in small_lab.host_path("web-1", "/srv/env-ValidateService")
        .read_text()
        .splitlines()
    )
    assert seen == {
        "APPLICATION_NAME": "hello",
        "BUNDLE_SHA256": result.document["revision"]["sha256"],
        "DEPLOYMENT_GROUP_ID": gid,
        "DEPLOYMENT_GROUP_NAME": "web",
        "DEPLOYMENT_ID": deployment_id,
        "LIFECYCLE_EVENT": "ValidateService",
    }
    assert (
        "LIFECYCLE_EVENT=BeforeInstall"
        in small_lab.host_path("web-1", "/srv/env-BeforeInstall").read_text()
    )
    archive = f"{small_lab.deployment_root('web-1')}/{gid}/{deployment_id}/deployment-archive"
    assert small_lab.host_path("web-1", "/srv/cwd").read_text().strip() == archive
    assert small_lab.host_path("web-1", "/srv/stdin").read_text() == "stdin is empty\n"


@pytest.fixture
def runas_user() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("runas needs the lab to run as root (CI does)")
    try:
        pwd.getpwnam(RUNAS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUNAS_USER],
            check=True,
        )
    yield RUNAS_USER


def test_runas_a_non_root_user(small_lab: Lab, tmp_path: Path, runas_user: str) -> None:
    body = 'echo "user=$(id -un) event=$LIFECYCLE_EVENT"\n'
    bundle = script_bundle(tmp_path, "runas", {"AfterInstall": body}, runas=runas_user)
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    tail = result.event("web-1", "AfterInstall")["diagnostics"]["logTail"]
    assert f"user={runas_user} event=AfterInstall" in tail


def test_runas_an_unknown_user_fails_the_script(small_lab: Lab, tmp_path: Path) -> None:
    bundle = script_bundle(
        tmp_path, "nouser", {"AfterInstall": "true\n"}, runas="no-such-user-here"
    )
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 5
    assert result.event("web-1", "AfterInstall")["diagnostics"]["errorCode"] == "ScriptFailed"


def test_permissions_and_modes_are_applied_to_what_the_install_created(
    small_lab: Lab, tmp_path: Path
) -> None:
    extra = (
        "permissions:\n"
        '  - object: /srv/perm\n    pattern: "*.sh"\n    type: [file]\n    mode: "750"\n'
        "    owner: nobody\n"
        '  - object: /srv/perm/conf\n    type: [file]\n    mode: "600"\n'
        '  - object: /srv/perm\n    pattern: conf\n    type: [directory]\n    mode: "711"\n'
    )
    files = {"run.sh": "#!/bin/sh\n", "conf/app.ini": "x=1\n", "readme.txt": "hi\n"}
    bundle = script_bundle(tmp_path, "perm", {}, appspec_extra=extra, files=files)
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    root = small_lab.host_path("web-1", "/srv/perm")

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(root / "run.sh") == 0o750
    assert (root / "run.sh").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert mode(root / "conf" / "app.ini") == 0o600
    assert mode(root / "conf") == 0o711
    assert mode(root / "readme.txt") == 0o644  # no rule: the bundle's mode
    assert mode(small_lab.host_path("web-1", "/srv")) != 0o711  # pre-existing: never touched


def test_an_unreachable_host_is_a_failed_target(fleet: Lab, tmp_path: Path) -> None:
    fleet.stop_host("web-3")
    result = rollout(fleet, hello_web(tmp_path), *ALL_AT_ONCE)
    assert result.exit_code == 4
    assert result.statuses()["web-3"] == "Failed"
    first = result.target("web-3")["lifecycleEvents"][0]
    assert "host unreachable" in first["diagnostics"]["message"]
    assert "web-3: host unreachable" in result.stderr
    assert result.document["deploymentOverview"]["Succeeded"] == 4


def test_a_wrong_host_key_fails_that_host_only(fleet: Lab, tmp_path: Path) -> None:
    web2 = fleet.host("web-2")
    impostor = generate_key(tmp_path / "impostor", "impostor")
    known = tmp_path / "known_hosts"
    lines = [
        line
        for line in fleet.known_hosts.read_text().splitlines()
        if not line.startswith(f"[{web2.address}]")
    ]
    known.write_text("\n".join([*lines, f"[{web2.address}]:{web2.port} {impostor}"]) + "\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        fleet.inventory_path.read_text().replace(str(fleet.known_hosts), str(known))
    )
    result = rollout(fleet, hello_web(tmp_path), *ALL_AT_ONCE, inventory=inventory)
    assert result.exit_code == 4
    message = result.target("web-2")["lifecycleEvents"][0]["diagnostics"]["message"]
    assert "ssh-ed25519" in message and "not trusted" in message
    assert not fleet.host_path("web-2", "/srv/hello-web").exists()  # never touched


def test_a_hook_outlives_a_dropped_connection_and_its_result_is_collected(
    small_lab: Lab, tmp_path: Path
) -> None:
    """sshd dies while AfterInstall runs; the hook goes on, the engine reconnects and collects."""
    go = "/srv/go"
    bundle = script_bundle(tmp_path, "drop", {"AfterInstall": waiting_hook(go, 60)})

    def drop_connection() -> None:
        small_lab.kill_sshd("web-1")
        small_lab.restart("web-1")
        small_lab.host_path("web-1", go).write_text("go\n")

    result = engine_run(small_lab, bundle, tmp_path, "AfterInstall", drop_connection)
    target = result.targets["web-1"]
    assert target.status == "Succeeded", [(e.name, e.status, e.diagnostics) for e in target.events]
    assert "done waiting" in target.event("AfterInstall").output


def test_script_missing_from_the_previous_install(small_lab: Lab, tmp_path: Path) -> None:
    """The previous revision's ApplicationStop script was deleted on the host: ScriptMissing,
    unless --ignore-application-stop-failures."""
    bundle = script_bundle(tmp_path, "old", {"ApplicationStop": "echo stopping\n"})
    first = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert first.exit_code == 0
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    old = f"{small_lab.deployment_root('web-1')}/{gid}/{first.document['deploymentId']}"
    small_lab.host_path("web-1", f"{old}/deployment-archive/scripts/ApplicationStop.sh").unlink()
    second = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert second.exit_code == 4
    assert second.event("web-1", "ApplicationStop")["diagnostics"]["errorCode"] == "ScriptMissing"
    third = rollout(small_lab, bundle, *ALL_AT_ONCE, "--ignore-application-stop-failures")
    assert third.exit_code == 0, third.stderr
    shutil.rmtree(tmp_path / "old")


def test_become_sudo_when_the_ssh_user_is_not_root(
    small_lab: Lab, tmp_path: Path, sudo_user: str, runas_user: str
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        small_lab.inventory_path.read_text()
        .replace("user: root", f"user: {sudo_user}")
        .replace("become: none", "become: sudo")
    )
    body = 'echo "hook user=$(id -un) event=$LIFECYCLE_EVENT app=$APPLICATION_NAME"\n'
    bundle = script_bundle(
        tmp_path, "sudo", {"AfterInstall": body, "ValidateService": body}, runas=None
    )
    result = rollout(small_lab, bundle, *ALL_AT_ONCE, inventory=inventory)
    assert result.exit_code == 0, result.stderr
    assert (
        "hook user=root event=AfterInstall app=hello"
        in result.event("web-1", "AfterInstall")["diagnostics"]["logTail"]
    )
    installed = small_lab.host_path("web-1", "/srv/sudo/index.txt")
    assert installed.stat().st_uid == 0  # installed as root through sudo
    as_app = script_bundle(tmp_path / "2", "sudo", {"AfterInstall": body}, runas=runas_user)
    second = rollout(small_lab, as_app, *ALL_AT_ONCE, inventory=inventory)
    assert second.exit_code == 0, second.stderr
    assert (
        f"hook user={runas_user}" in second.event("web-2", "AfterInstall")["diagnostics"]["logTail"]
    )
