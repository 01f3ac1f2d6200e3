"""When things go wrong: rollback, stop, locks, crash and resume, frozen and dying hosts, catch-up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from orchestrator.transport.base import ScriptCall
from orchestrator.transport.ssh import SshTransport
from tests.integration.helpers import (
    NO_RETRY,
    ctrl_c_twice,
    engine_run,
    event_started,
    fetch,
    rollout,
    start_orchestrator,
    start_waiting_rollout,
    wait_for_event,
    waiting_hook,
)
from tests.integration.revisions import failing_validate, hello_web, script_bundle

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")
GO = "/srv/go"


def status(deployment_id: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["status", deployment_id, "--output", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_failed_deployment_rolls_back_touched_hosts_to_revision_1(
    fleet: Lab, tmp_path: Path
) -> None:
    first = rollout(fleet, hello_web(tmp_path), *ALL_AT_ONCE)
    assert first.exit_code == 0
    second = failing_validate(
        tmp_path, [fleet.host(n).address for n in ("web-1", "web-2", "web-3")]
    )
    (second / "www" / "v2.html").write_text("version 2\n")
    (second / "scripts" / "stop.sh").write_text(
        (second / "scripts" / "stop.sh").read_text()
        + 'echo "$DEPLOYMENT_ID" > /srv/hello-web/run/v2-stop-ran\n'
    )
    result = rollout(
        fleet, second, "--deployment-config", "CodeDeployDefault.HalfAtATime", "--auto-rollback"
    )
    assert result.exit_code == 5  # the original failure
    info = result.document["rollbackInfo"]
    assert info["rollbackStatus"] == "Succeeded"
    rollback = status(info["rollbackDeploymentId"])
    assert rollback["creator"] == "rollback"
    assert (
        rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"]
        == result.document["deploymentId"]
    )  # type: ignore[index]
    touched = {t["host"] for t in rollback["targets"]}  # type: ignore[attr-defined]
    assert touched == {"web-1", "web-2"}  # the first wave failed; the rest were never touched
    for name in touched:
        assert not fleet.host_path(name, "/srv/hello-web/www/v2.html").exists()
        assert "Deployed by orchestrator" in fetch(fleet.host(name).address)
        # The failed revision's ApplicationStop ran: its Install had succeeded.
        assert (
            fleet.host_path(name, "/srv/hello-web/run/v2-stop-ran").read_text().strip()
            == info["rollbackDeploymentId"]
        )
    logs = CliRunner().invoke(
        cli, ["logs", info["rollbackDeploymentId"], "--event", "DownloadBundle"]
    )
    assert logs.stdout.count("reused the bundle already on the host") == 2


def test_no_rollback_without_an_earlier_success(small_lab: Lab, tmp_path: Path) -> None:
    failing = failing_validate(tmp_path, [small_lab.host("web-1").address])
    result = rollout(small_lab, failing, "--auto-rollback")
    assert result.exit_code == 5
    assert "no earlier successful deployment" in result.document["rollbackInfo"]["rollbackMessage"]


def test_manual_rollback_to_a_named_deployment(small_lab: Lab, tmp_path: Path) -> None:
    one = script_bundle(tmp_path, "app", {}, files={"version": "1\n"})
    first = rollout(small_lab, one, *ALL_AT_ONCE)
    two = script_bundle(tmp_path / "2", "app", {}, files={"version": "2\n"})
    assert rollout(small_lab, two, *ALL_AT_ONCE).exit_code == 0
    result = CliRunner().invoke(
        cli,
        [
            "-i",
            str(small_lab.inventory_path),
            "rollback",
            "-a",
            "hello",
            "-g",
            "web",
            "--to",
            first.document["deploymentId"],
            "--output",
            "json",
            *ALL_AT_ONCE,
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["creator"] == "rollback"
    assert document["revision"]["sha256"] == first.document["revision"]["sha256"]
    for host in ("web-1", "web-2"):
        assert small_lab.host_path(host, "/srv/app/version").read_text() == "1\n"


def test_stop_from_another_terminal(fleet: Lab, tmp_path: Path) -> None:
    process, _, deployment_id = start_waiting_rollout(fleet, tmp_path, GO)
    try:
        stop = CliRunner().invoke(cli, ["stop", deployment_id, "--wait", "0"])
        assert stop.exit_code == 0, stop.output
        fleet.host_path("web-1", GO).write_text("go\n")  # the running hook finishes
        assert process.wait(timeout=60) == 6
    finally:
        process.kill()
    document = status(deployment_id)
    assert document["status"] == "Stopped"
    assert document["errorInformation"] == {
        "code": "MANUAL_STOP",
        "message": "the deployment was stopped",
    }
    web1 = {e["lifecycleEventName"]: e["status"] for e in document["targets"][0]["lifecycleEvents"]}  # type: ignore[index]
    assert web1["AfterInstall"] == "Succeeded" and web1["ApplicationStart"] == "Skipped"
    assert [t["status"] for t in document["targets"]][1:] == ["Skipped"] * 4  # type: ignore[attr-defined]


def test_ctrl_c_records_the_deployment_as_stopped(small_lab: Lab, tmp_path: Path) -> None:
    process, events, deployment_id = start_waiting_rollout(small_lab, tmp_path, GO)
    try:
        assert ctrl_c_twice(process, events) == 130
    finally:
        process.kill()
    document = status(deployment_id)
    assert document["status"] == "Stopped"
    after = document["targets"][0]["lifecycleEvents"][4]  # type: ignore[index]
    assert after["lifecycleEventName"] == "AfterInstall" and after["status"] == "Failed"
    assert "terminated" in after["diagnostics"]["message"]


def test_lock_contention_wait_and_simultaneous_starts(small_lab: Lab, tmp_path: Path) -> None:
    bundle = script_bundle(tmp_path, "slow", {"AfterInstall": waiting_hook(GO)})
    events = tmp_path / "events.ndjson"
    base = [
        "-i",
        str(small_lab.inventory_path),
        "rollout",
        "-a",
        "hello",
        "-g",
        "web",
        "-r",
        str(bundle),
        *ALL_AT_ONCE,
    ]
    holder = start_orchestrator([*base, "--events", str(events)], tmp_path / "holder")
    waiter = None
    try:
        holder_id = wait_for_event(events, event_started("web-1", "AfterInstall"))["deploymentId"]
        refused = CliRunner().invoke(cli, base)
        assert refused.exit_code == 7
        assert f"locked by {holder_id}" in refused.stderr and "since" in refused.stderr
        waiter = start_orchestrator(
            [*base, "--lock-wait", "120", "--output", "json"], tmp_path / "waiter"
        )
        for host in ("web-1", "web-2"):
            small_lab.host_path(host, GO).write_text("go\n")
        assert holder.wait(timeout=60) == 0
        assert waiter.wait(timeout=120) == 0, (tmp_path / "waiter" / "stderr").read_text()
    finally:
        holder.kill()
        if waiter:
            waiter.kill()
    waited = json.loads((tmp_path / "waiter" / "stdout").read_text())
    assert waited["createTime"] >= status(holder_id)["completeTime"]  # type: ignore[operator]
    # Two rollouts started at the same instant from two processes: exactly one proceeds. Its
    # AfterInstall waits for a file written only once the other has exited, so the winner cannot
    # finish (and free the lock) before the loser has tried.
    race_go = "/srv/go-race"
    quick = script_bundle(tmp_path / "q", "quick", {"AfterInstall": waiting_hook(race_go, 60)})
    racers = [
        start_orchestrator([*base[:-4], "-r", str(quick), *ALL_AT_ONCE], tmp_path / f"racer{i}")
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while all(racer.poll() is None for racer in racers) and time.monotonic() < deadline:
        time.sleep(0.05)
    for host in ("web-1", "web-2"):
        small_lab.host_path(host, race_go).write_text("go\n")
    codes = sorted(racer.wait(timeout=120) for racer in racers)
    assert codes == [0, 7], [(tmp_path / f"racer{i}" / "stderr").read_text() for i in range(2)]


def test_a_stale_host_lock_is_taken_over_and_a_live_one_is_not(
    small_lab: Lab, tmp_path: Path
) -> None:
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")

    def plant(host: str, heartbeat: int) -> None:
        lock = small_lab.host_path(host, f"{small_lab.deployment_root(host)}/locks/{gid}")
        lock.mkdir(parents=True)
        (lock / "holder").write_text(
            "holder=ops@elsewhere\npid=4242\nsince=2026-01-01T00:00:00Z\ndeployment=d-GHOST0001\n"
        )
        (lock / "deployment").write_text("d-GHOST0001\n")
        (lock / "heartbeat").write_text(f"{heartbeat}\n")

    plant("web-2", int(time.time()))  # alive: heartbeat now
    refused = CliRunner().invoke(
        cli,
        [
            "-i",
            str(small_lab.inventory_path),
            "rollout",
            "-a",
            "hello",
            "-g",
            "web",
            "-r",
            str(hello_web(tmp_path)),
        ],
    )
    assert refused.exit_code == 7
    assert "web-2 by d-GHOST0001 (ops@elsewhere, pid 4242)" in refused.stderr
    assert not small_lab.host_path("web-1", "/srv/hello-web").exists()  # nothing started
    stale = small_lab.host_path(
        "web-2", f"{small_lab.deployment_root('web-2')}/locks/{gid}/heartbeat"
    )
    stale.write_text("0\n")
    result = rollout(small_lab, hello_web(tmp_path / "again"), *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    assert "took over a stale lock held by d-GHOST0001" in "".join(
        r.get("message") or "" for r in result.events if r["type"] == "Notice"
    )
    assert not small_lab.host_path(
        "web-2", f"{small_lab.deployment_root('web-2')}/locks/{gid}"
    ).exists()


def test_sigkill_then_resume(small_lab: Lab, tmp_path: Path) -> None:
    process, _, deployment_id = start_waiting_rollout(small_lab, tmp_path, GO)
    try:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    interrupted = status(deployment_id)
    assert interrupted["status"] == "InProgress" and interrupted["interrupted"] is True
    text = CliRunner().invoke(cli, ["status", deployment_id])
    assert "interrupted" in text.stdout and "--resume" in text.stdout
    small_lab.host_path("web-1", GO).write_text("go\n")  # the hook ends while nobody watches
    small_lab.host_path("web-2", GO).write_text("go\n")
    resumed = CliRunner().invoke(
        cli,
        [
            "-i",
            str(small_lab.inventory_path),
            "rollout",
            "--resume",
            deployment_id,
            "--output",
            "json",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    document = json.loads(resumed.stdout)
    assert document["deploymentId"] == deployment_id and document["status"] == "Succeeded"
    assert [t["status"] for t in document["targets"]] == ["Succeeded", "Succeeded"]
    logs = CliRunner().invoke(
        cli, ["logs", deployment_id, "--host", "web-1", "--event", "AfterInstall"]
    )
    assert "done waiting" in logs.stdout  # collected, not rerun
    assert not small_lab.host_path(
        "web-1", f"{small_lab.deployment_root('web-1')}/ongoing-deployment/{deployment_id}"
    ).exists()


def test_a_host_frozen_in_the_middle_of_a_hook(small_lab: Lab, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        small_lab.inventory_path.read_text().replace(
            "connect_timeout: 5", "connect_timeout: 2\n    keepalive_interval: 1"
        )
    )
    bundle = script_bundle(tmp_path, "frozen", {"AfterInstall": waiting_hook(GO)})

    def freeze() -> None:
        small_lab.freeze("web-1")
        small_lab.host_path("web-1", GO).write_text("go\n")
        thaw = threading.Timer(6, small_lab.thaw, ["web-1"])  # long enough for keepalives to fail
        thaw.start()
        thaw.join()

    result = engine_run(small_lab, bundle, tmp_path, "AfterInstall", freeze, inventory)
    target = result.targets["web-1"]
    assert target.status == "Succeeded", [(e.name, e.status, e.diagnostics) for e in target.events]
    assert "done waiting" in target.event("AfterInstall").output


def test_sshd_dying_in_the_middle_of_install(small_lab: Lab, tmp_path: Path) -> None:
    files = {f"data/file-{i:04}.txt": f"{i}\n" * 50 for i in range(400)}
    bundle = script_bundle(tmp_path, "big", {}, files=files)
    result = engine_run(
        small_lab, bundle, tmp_path, "Install", lambda: small_lab.kill_sshd("web-1")
    )
    target = result.targets["web-1"]
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    cleanup = small_lab.host_path(
        "web-1", f"{small_lab.deployment_root('web-1')}/deployment-instructions/{gid}-cleanup"
    )
    recorded = set(cleanup.read_text().split()) if cleanup.exists() else set()
    installed = (
        {
            f"/srv/big/{p.relative_to(small_lab.host_path('web-1', '/srv/big'))}"
            for p in small_lab.host_path("web-1", "/srv/big").rglob("*")
        }
        if small_lab.host_path("web-1", "/srv/big").exists()
        else set()
    )
    assert installed <= recorded  # nothing on the host that the cleanup file does not know
    small_lab.restart("web-1")
    if target.status != "Succeeded":
        assert target.event("Install").status == "Failed"
    again = rollout(small_lab, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert again.exit_code == 0, again.stderr
    assert len(list(small_lab.host_path("web-1", "/srv/big/data").iterdir())) == 400


def test_sync_catches_up_a_host_added_later(fleet: Lab, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    text = fleet.inventory_path.read_text()
    before = text.replace("  web-5:\n", "  web-5:\n", 1)
    lines = before.split("\n")
    at = lines.index("  web-5:")
    tag_line = next(i for i in range(at, len(lines)) if lines[i].strip() == "role: web")
    lines[tag_line] = lines[tag_line].replace("role: web", "role: spare")
    inventory.write_text("\n".join(lines))
    first = rollout(fleet, hello_web(tmp_path), *ALL_AT_ONCE, inventory=inventory)
    assert first.exit_code == 0 and len(first.document["targets"]) == 4
    inventory.write_text(text)  # web-5 joins the group
    result = CliRunner().invoke(
        cli,
        [
            "-i",
            str(inventory),
            "sync",
            "-a",
            "hello",
            "-g",
            "web",
            "--output",
            "json",
            *ALL_AT_ONCE,
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {t["host"]: t["status"] for t in document["targets"]} == {
        "web-1": "Skipped",
        "web-2": "Skipped",
        "web-3": "Skipped",
        "web-4": "Skipped",
        "web-5": "Succeeded",
    }
    assert "Deployed by orchestrator" in fetch(fleet.host("web-5").address)
    again = CliRunner().invoke(
        cli, ["-i", str(inventory), "sync", "-a", "hello", "-g", "web", "--output", "json"]
    )
    assert again.exit_code == 0
    assert {t["status"] for t in json.loads(again.stdout)["targets"]} == {"Skipped"}


def test_lock_status_and_release(small_lab: Lab, tmp_path: Path) -> None:
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    lock = small_lab.host_path("web-1", f"{small_lab.deployment_root('web-1')}/locks/{gid}")
    lock.mkdir(parents=True)
    (lock / "holder").write_text(
        "holder=ops@gone\npid=1\nsince=2026-01-01T00:00:00Z\ndeployment=d-DEAD00001\n"
    )
    (lock / "deployment").write_text("d-DEAD00001\n")
    (lock / "heartbeat").write_text("0\n")
    base = ["-i", str(small_lab.inventory_path), "lock"]
    shown = CliRunner().invoke(cli, [*base, "status", "-a", "hello", "-g", "web"])
    assert shown.exit_code == 0
    assert "d-DEAD00001" in shown.stdout and "this machine: free" in shown.stdout
    released = CliRunner().invoke(cli, [*base, "release", "-a", "hello", "-g", "web", "--force"])
    assert released.exit_code == 0
    assert not lock.exists()
    assert small_lab.host_path("web-1", small_lab.deployment_root("web-1")).exists()


def test_a_full_disk_under_the_events_file_stops_cleanly(small_lab: Lab, tmp_path: Path) -> None:
    """Writing fails from the first event (/dev/full): stopped, exit 8 (a local fault), hosts untouched, locks
    released, the history store says so, and the next rollout runs."""
    revision = hello_web(tmp_path)
    args = ["-i", str(small_lab.inventory_path), "rollout", "-a", "hello", "-g", "web"]
    result = CliRunner().invoke(
        cli, [*args, "-r", str(revision), "--output", "json", "--events", "/dev/full"]
    )
    assert result.exit_code == 8, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: cannot write the events file /dev/full: [Errno 28] No space left on device" in (
        result.stderr
    )
    document = json.loads(result.stdout)
    assert document["status"] == "Stopped"
    assert document["errorInformation"]["code"] == "INTERNAL_ERROR"
    assert {t["status"] for t in document["targets"]} == {"Skipped"}
    for host in small_lab.hosts:
        assert not small_lab.host_path(host.name, "/srv/hello-web").exists()
    assert status(document["deploymentId"])["status"] == "Stopped"
    again = rollout(small_lab, revision)
    assert again.exit_code == 0, again.stderr


def test_a_full_disk_on_a_host_fails_that_host_and_leaves_no_lock(
    small_lab: Lab, tmp_path: Path
) -> None:
    """web-2's locks directory on a full 64 KiB tmpfs (mounted in that host's own mount
    namespace): web-2 is a failed target that says why, no half-written lock is left behind to
    read as held by nobody knows whom, web-1 deploys, and once there is room web-2 deploys. Then
    a lock whose filesystem turns read-only: its heartbeat answers failed, with the reason."""
    if not small_lab.namespaced:
        pytest.skip("needs the lab's private mount namespaces (root)")
    locks = f"{small_lab.deployment_root('web-2')}/locks"
    small_lab.host_path("web-2", locks).mkdir(parents=True, exist_ok=True)
    inside = ["nsenter", "-t", str(min(small_lab.host_pids("web-2"))), "-m", "--"]
    subprocess.run([*inside, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", locks], check=True)
    try:
        filler = subprocess.run(
            [*inside, "dd", "if=/dev/zero", f"of={locks}/filler", "bs=4k"],
            check=False,
            capture_output=True,
        )
        assert b"No space left" in filler.stderr
        result = rollout(small_lab, hello_web(tmp_path), *ALL_AT_ONCE)
        assert result.exit_code == 4, result.stderr
        assert result.target("web-1")["status"] == "Succeeded"
        assert result.target("web-2")["status"] == "Failed"
        message = result.target("web-2")["lifecycleEvents"][0]["diagnostics"]["message"]
        assert message.startswith("cannot take the deployment group's lock on the host: ")
        assert "No space left on device" in message
        listing = subprocess.run(
            [*inside, "ls", "-A", locks], check=True, capture_output=True, text=True
        )
        assert listing.stdout.split() == ["filler"]
        assert not small_lab.host_path("web-2", "/srv/hello-web").exists()
    finally:
        subprocess.run([*inside, "umount", locks], check=True)
    again = rollout(small_lab, hello_web(tmp_path, "again"), *ALL_AT_ONCE)
    assert again.exit_code == 0, again.stderr

    # A lock taken, then its filesystem turned read-only: the heartbeat says it failed.
    subprocess.run([*inside, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", locks], check=True)
    try:
        spec = load_inventory(small_lab.inventory_path).resolve_host("web-2")
        gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
        root = small_lab.deployment_root("web-2")

        async def lock_then_freeze() -> list[str]:
            session = await SshTransport(NO_RETRY, script=HOST_PROGRAMS).connect(spec)
            try:
                answers = []
                for mode in ("acquire", "heartbeat", "read-only", "heartbeat", "release"):
                    if mode == "read-only":
                        remount = [*inside, "mount", "-o", "remount,ro", locks]
                        subprocess.run(remount, check=True)
                        continue
                    extra = ("120", "holder=test") if mode == "acquire" else ()
                    call = ScriptCall("lock", (mode, root, gid, "d-HEARTBEAT", *extra))
                    reply = await session.call(call, timeout=30)
                    answers.append(b"".join(body for _, body in reply.frames).decode())
                return answers
            finally:
                await session.close()

        acquired, refreshed, failed, released = asyncio.run(lock_then_freeze())
        assert "lock=acquired" in acquired and "lock=refreshed" in refreshed
        assert "lock=failed\nerror=" in failed and "Read-only file system" in failed
        # Neither the deployment's release nor the operator's break claims what it did not do.
        assert "lock=failed\nerror=" in released and "Read-only file system" in released
        base = ["-i", str(small_lab.inventory_path), "lock", "release", "-a", "hello", "-g", "web"]
        broken = CliRunner().invoke(cli, [*base, "--force"])
        assert broken.exit_code == 5, broken.stdout
        assert "failed" in broken.stdout and "Read-only" in broken.stdout
    finally:
        subprocess.run([*inside, "umount", locks], check=True)


def test_a_bundle_that_does_not_fit_on_a_host_is_never_taken_for_one_there(
    small_lab: Lab, tmp_path: Path
) -> None:
    """web-2's deployment group directory on a 256 KiB tmpfs, the bundle 1 MiB: DownloadBundle
    fails there saying why, and the next rollout (with room) sends the bundle again instead of
    reusing the partial one."""
    if not small_lab.namespaced:
        pytest.skip("needs the lab's private mount namespaces (root)")
    revision = hello_web(tmp_path)
    (revision / "www" / "big.bin").write_bytes(os.urandom(1024 * 1024))
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    group_dir = f"{small_lab.deployment_root('web-2')}/{gid}"
    small_lab.host_path("web-2", group_dir).mkdir(parents=True, exist_ok=True)
    inside = ["nsenter", "-t", str(min(small_lab.host_pids("web-2"))), "-m", "--"]
    mount = ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", group_dir]
    subprocess.run([*inside, *mount], check=True)
    try:
        result = rollout(small_lab, revision, *ALL_AT_ONCE)
        assert result.exit_code == 4, result.stderr
        assert result.target("web-1")["status"] == "Succeeded"
        download = result.event("web-2", "DownloadBundle")
        assert download["status"] == "Failed"
        assert "No space left on device" in download["diagnostics"]["message"]
        assert "the bundle could not be written" in download["diagnostics"]["message"]
        listing = subprocess.run(
            [*inside, "find", group_dir, "-name", "bundle.*"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert listing.stdout.strip().endswith("/bundle.tar")  # no bundle.sha256 beside it
    finally:
        subprocess.run([*inside, "umount", group_dir], check=True)
    again = rollout(small_lab, revision, *ALL_AT_ONCE)
    assert again.exit_code == 0, again.stderr
    logs = CliRunner().invoke(
        cli,
        ["logs", again.document["deploymentId"], "--host", "web-2", "--event", "DownloadBundle"],
    )
    assert "received the bundle" in logs.stdout, logs.stdout


def test_a_resumed_zonal_deployment_does_not_bake_finished_zones_again(
    fleet: Lab, tmp_path: Path
) -> None:
    """Three zones (web-1; web-2; web-3..5), 1 s bakes. The controller is killed while web-2, in
    the second zone, waits in AfterInstall; the resumed run finishes that zone, bakes it, and
    deploys the third, without baking the first zone again."""
    document = yaml.safe_load(fleet.inventory_path.read_text())
    zonal = document["deployment_configs"]["ZoneByZone"]["zonal"]
    zonal["first_zone_monitor_duration"] = zonal["monitor_duration"] = 1
    for name, host in document["hosts"].items():
        host["zone"] = {"web-1": "z1", "web-2": "z2"}.get(name, "z3")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(document))
    for host in ("web-1", "web-3", "web-4", "web-5"):
        fleet.host_path(host, GO).write_text("go\n")
    bundle = script_bundle(tmp_path, "zonal", {"AfterInstall": waiting_hook(GO)})
    events = tmp_path / "events.ndjson"
    base = ["-i", str(inventory), "rollout"]
    process = start_orchestrator(
        [*base, "-a", "hello", "-g", "web-zonal", "-r", str(bundle), "--events", str(events)],
        tmp_path / "run",
    )
    try:
        record = wait_for_event(events, event_started("web-2", "AfterInstall"))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    before = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(r["zone"], r["seconds"]) for r in before if r["type"] == "ZoneBaking"] == [("z1", 1)]
    fleet.host_path("web-2", GO).write_text("go\n")
    resumed_events = tmp_path / "resumed.ndjson"
    resumed = CliRunner().invoke(
        cli, [*base, "--resume", record["deploymentId"], "--events", str(resumed_events)]
    )
    assert resumed.exit_code == 0, resumed.output
    after = [json.loads(line) for line in resumed_events.read_text().splitlines()]
    assert [(r["zone"], r["seconds"]) for r in after if r["type"] == "ZoneBaking"] == [("z2", 1)]
    assert status(record["deploymentId"])["status"] == "Succeeded"
