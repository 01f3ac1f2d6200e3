"""The fleet loop and a host's lifecycle on a scripted transport (no SSH)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import Control, OperatorStop
from orchestrator.events import (
    Event,
    EventSink,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
)
from orchestrator.hostproto.replies import LockReply, LockState
from orchestrator.install_plan import build_install_plan
from orchestrator.models.deployment_config import (
    PREDEFINED,
    DeploymentConfig,
    MinimumHealthyHosts,
)
from orchestrator.models.inventory import parse_inventory
from orchestrator.models.results import Deployment, RevisionInfo
from orchestrator.revision import Revision, build_revision
from tests.paths import HELLO_WEB
from tests.unit.fake_transport import FakeFleet, FakeTransport

INVENTORY = parse_inventory(
    "hosts:\n"
    + "".join(f"  web-{i}: {{address: 127.0.0.{i}, tags: {{role: web}}}}\n" for i in range(1, 6))
    + "applications:\n  hello:\n    deployment_groups:\n      web: {tag_sets: [[{key: role}]]}\n"
)


def new_deployment(revision: Revision, config: str) -> Deployment:
    return Deployment(
        "d-TEST00001",
        "hello",
        "web",
        INVENTORY.group_id("hello", "web"),
        RevisionInfo("hello-web", revision.sha256, revision.size, "directory"),
        config,
    )


def run(
    tmp_path: Path,
    config: str,
    fleet: FakeFleet,
    stop_after_first: bool = False,
    first_sink: EventSink | None = None,
    custom: DeploymentConfig | None = None,
) -> tuple[Deployment, list[Event]]:
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    deployment = new_deployment(revision, config)
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    hosts = [INVENTORY.resolve_host(f"web-{i}") for i in range(1, 6)]
    events: list[Event] = []

    async def go() -> Deployment:
        rollout = Rollout(deployment, revision, plan, custom or PREDEFINED[config], hosts)
        asked = OperatorStop()

        def sink(event: Event) -> None:
            events.append(event)
            if (
                stop_after_first
                and isinstance(event, LifecycleEventFinished)
                and event.event.name == "Install"
            ):
                asked.ask()

        sinks = [first_sink, sink] if first_sink else [sink]
        runner = DeploymentRunner(rollout, FakeTransport(fleet), sinks, Control([asked]))
        done = await runner.run()
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no host task left behind
        return done

    return asyncio.run(go()), events


def statuses(deployment: Deployment) -> list[str]:
    return [t.status for t in deployment.targets.values()]


def test_every_host_runs_every_event_in_order(tmp_path: Path) -> None:
    fleet = FakeFleet()
    deployment, events = run(tmp_path, "CodeDeployDefault.AllAtOnce", fleet)
    assert deployment.status == "Succeeded"
    assert statuses(deployment) == ["Succeeded"] * 5
    web1 = [
        e.event.name
        for e in events
        if isinstance(e, LifecycleEventFinished) and e.target.host == "web-1"
    ]
    assert web1 == [
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ]
    programs = [program for host, program, _ in fleet.calls if host == "web-1"]
    assert programs[0] == "probe" and programs[-2:] == ["finish", "lock"]  # lock released last
    assert programs.count("download") == programs.count("install") == 1


def test_half_at_a_time_stops_when_the_minimum_would_be_breached(tmp_path: Path) -> None:
    fleet = FakeFleet(failing_hooks={("web-1", "ValidateService"), ("web-2", "ValidateService")})
    deployment, _ = run(tmp_path, "CodeDeployDefault.HalfAtATime", fleet)
    assert deployment.status == "Failed"
    assert deployment.error_code == "HEALTH_CONSTRAINTS"
    assert statuses(deployment) == ["Failed", "Failed", "Skipped", "Skipped", "Skipped"]
    failed = deployment.targets["web-1"].event("ValidateService")
    assert failed.diagnostics is not None and failed.diagnostics.error_code == "ScriptFailed"
    assert "[stderr]boom" in failed.diagnostics.log_tail
    assert {e.status for e in deployment.targets["web-3"].events} == {"Skipped"}
    assert {c[1] for c in fleet.calls if c[0] == "web-3"} == {"probe", "lock"}  # never deployed to


def test_an_unreachable_host_is_a_failed_target(tmp_path: Path) -> None:
    deployment, _ = run(tmp_path, "CodeDeployDefault.AllAtOnce", FakeFleet(unreachable={"web-4"}))
    assert deployment.status == "Succeeded"
    assert statuses(deployment) == ["Succeeded", "Succeeded", "Succeeded", "Failed", "Succeeded"]
    first = deployment.targets["web-4"].events[0]
    assert first.diagnostics is not None and "unreachable" in first.diagnostics.message


def test_a_stop_request_starts_no_new_event_and_no_new_host(tmp_path: Path) -> None:
    deployment, _ = run(
        tmp_path, "CodeDeployDefault.OneAtATime", FakeFleet(), stop_after_first=True
    )
    assert deployment.status == "Stopped"
    assert deployment.error_code == "MANUAL_STOP"
    assert statuses(deployment) == ["Failed", "Skipped", "Skipped", "Skipped", "Skipped"]
    web1 = {e.name: e.status for e in deployment.targets["web-1"].events}
    assert web1["Install"] == "Succeeded"
    assert web1["AfterInstall"] == web1["ValidateService"] == "Skipped"


class FullDisk:
    """A sink whose disk fills up when web-1's Install finishes."""

    label = "the events file /var/log/full.ndjson"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if (
            isinstance(event, LifecycleEventFinished)
            and event.target.host == "web-1"
            and event.event.name == "Install"
        ):
            raise OSError(28, "No space left on device")


def test_a_sink_that_fails_stops_the_deployment_cleanly(tmp_path: Path) -> None:
    full = FullDisk()
    deployment, events = run(tmp_path, "CodeDeployDefault.OneAtATime", FakeFleet(), first_sink=full)
    assert deployment.status == "Stopped"
    assert deployment.error_code == "INTERNAL_ERROR"
    assert deployment.error_message == (
        "stopped: cannot write the events file /var/log/full.ndjson: "
        "[Errno 28] No space left on device"
    )
    # The failing sink got nothing more; the others got everything, and were told why.
    assert isinstance(full.events[-1], LifecycleEventFinished)
    failed_at = next(i for i, e in enumerate(events) if e is full.events[-1])
    assert not any(isinstance(e, LifecycleEventStarted) for e in events[failed_at:])
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == [
        "stopping: cannot write the events file /var/log/full.ndjson: [Errno 28] No space "
        "left on device; running hooks finish, no new lifecycle event starts"
    ]
    web1 = {e.name: e.status for e in deployment.targets["web-1"].events}
    assert web1["Install"] == "Succeeded" and web1["AfterInstall"] == "Skipped"
    assert statuses(deployment) == ["Failed", "Skipped", "Skipped", "Skipped", "Skipped"]


def test_the_document_has_codedeploys_fields(tmp_path: Path) -> None:
    deployment, _ = run(tmp_path, "CodeDeployDefault.AllAtOnce", FakeFleet())
    document = deployment.to_document()
    assert {
        "deploymentId",
        "applicationName",
        "deploymentGroupName",
        "status",
        "errorInformation",
        "deploymentOverview",
        "revision",
        "rollbackInfo",
        "createTime",
        "completeTime",
        "targets",
    } <= set(document)
    event = document["targets"][0]["lifecycleEvents"][2]
    assert set(event) >= {"lifecycleEventName", "status", "startTime", "endTime", "diagnostics"}
    assert set(event["diagnostics"]) == {"errorCode", "scriptName", "message", "logTail"}


def test_a_lock_held_on_any_host_starts_nothing(tmp_path: Path) -> None:
    import pytest

    from orchestrator.errors import LockHeld

    fleet = FakeFleet(locked={"web-3"})
    with pytest.raises(LockHeld, match="locked on 1 host\\(s\\), web-3 by d-OTHER"):
        run(tmp_path, "CodeDeployDefault.AllAtOnce", fleet)
    programs = {program for _, program, _ in fleet.calls}
    assert programs == {"probe", "lock"}  # probed, locked, released: nothing deployed


def test_a_heartbeat_that_cannot_be_written_is_reported_once_per_host(tmp_path: Path) -> None:
    """Heartbeats every 0.25 s; hooks run until the engine has said that web-1's heartbeat
    failed (bounded: 10 s)."""
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    events: list[Event] = []

    async def go() -> Deployment:
        told = asyncio.Event()
        fleet = FakeFleet(
            heartbeat=LockReply.of(
                LockState.FAILED, error="cat: write error: No space left on device"
            ),
            hooks_wait_for=told,
        )
        deployment = new_deployment(revision, "CodeDeployDefault.AllAtOnce")
        hosts = [INVENTORY.resolve_host("web-1")]
        rollout = Rollout(
            deployment, revision, plan, PREDEFINED["CodeDeployDefault.AllAtOnce"], hosts, lock_ttl=1
        )

        def sink(event: Event) -> None:
            events.append(event)
            if isinstance(event, Notice):
                told.set()

        runner = DeploymentRunner(rollout, FakeTransport(fleet), [sink])
        return await asyncio.wait_for(runner.run(), timeout=10)

    deployment = asyncio.run(go())
    assert deployment.status == "Succeeded"
    notices = [(e.host, e.message) for e in events if isinstance(e, Notice)]
    assert notices == [
        (
            "web-1",
            "cannot refresh the group's lock on this host: cat: write error: No space left on "
            "device; after 1 s without one another deployment may take it over",
        )
    ]


def test_a_lock_that_cannot_be_released_is_reported(tmp_path: Path) -> None:
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    events: list[Event] = []
    fleet = FakeFleet(
        release=LockReply.of(LockState.FAILED, error="rm: cannot remove 'x': Read-only file system")
    )
    deployment = new_deployment(revision, "CodeDeployDefault.AllAtOnce")
    hosts = [INVENTORY.resolve_host("web-1"), INVENTORY.resolve_host("web-2")]
    rollout = Rollout(deployment, revision, plan, PREDEFINED["CodeDeployDefault.AllAtOnce"], hosts)
    runner = DeploymentRunner(rollout, FakeTransport(fleet), [events.append])
    assert asyncio.run(runner.run()).status == "Succeeded"
    notices = sorted((e.host, e.message) for e in events if isinstance(e, Notice))
    said = (
        "cannot release the group's lock on this host: rm: cannot remove 'x': Read-only file "
        "system; the next deployment takes it over 120 s after its last heartbeat"
    )
    assert notices == [("web-1", said), ("web-2", said)]


def _two_hosts_heartbeating(
    tmp_path: Path, fleet: FakeFleet, gate: asyncio.Event, sink: EventSink
) -> Deployment:
    """web-1 and web-2 at once, heartbeats every 0.25 s, every hook waiting for ``gate``
    (bounded: 10 s)."""
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    config = "CodeDeployDefault.AllAtOnce"
    hosts = [INVENTORY.resolve_host("web-1"), INVENTORY.resolve_host("web-2")]
    rollout = Rollout(
        new_deployment(revision, config), revision, plan, PREDEFINED[config], hosts, lock_ttl=1
    )
    fleet.hooks_wait_for = gate

    async def go() -> Deployment:
        runner = DeploymentRunner(rollout, FakeTransport(fleet), [sink])
        done = await asyncio.wait_for(runner.run(), timeout=10)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no heartbeat left behind
        return done

    return asyncio.run(go())


def test_a_host_whose_lock_is_taken_over_fails_and_runs_nothing_more(tmp_path: Path) -> None:
    """web-1's lock is taken over while its BeforeInstall runs: the hook finishes, then web-1
    fails saying who holds its lock, and nothing more of this deployment runs there (not even
    the record of its outcome); web-2 deploys."""
    fleet = FakeFleet()
    gate = asyncio.Event()
    events: list[Event] = []

    def on_call(host: str, program: str, args: list[str]) -> None:
        if (host, program) == ("web-1", "hook") and "BeforeInstall" in args:
            fleet.lost_locks["web-1"] = "d-THIEF0001"

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, Notice) and event.host == "web-1":
            gate.set()

    fleet.on_call = on_call
    deployment = _two_hosts_heartbeating(tmp_path, fleet, gate, sink)
    web_1, web_2 = deployment.targets["web-1"], deployment.targets["web-2"]
    assert web_2.status == "Succeeded"
    assert web_1.status == "Failed"
    assert [(e.name, e.status) for e in web_1.events] == [
        ("ApplicationStop", "Succeeded"),
        ("DownloadBundle", "Succeeded"),
        ("BeforeInstall", "Succeeded"),
        ("Install", "Failed"),
        ("AfterInstall", "Skipped"),
        ("ApplicationStart", "Skipped"),
        ("ValidateService", "Skipped"),
    ]
    diagnostics = web_1.event("Install").diagnostics
    assert diagnostics is not None and diagnostics.error_code == "UnknownError"
    assert diagnostics.message.startswith(
        "the deployment group's lock on this host was taken over by d-THIEF0001"
    )
    assert "no further lifecycle event of this deployment runs here" in diagnostics.message
    after = fleet.calls.index(
        next(c for c in fleet.calls if c[0] == "web-1" and "BeforeInstall" in c[2])
    )
    ran = [(program, args) for host, program, args in fleet.calls[after + 1 :] if host == "web-1"]
    # Heartbeats until it was lost, the end of its part without a record, the lock's release.
    assert {program for program, _ in ran} <= {"lock", "finish"}, ran
    assert [args[3] for program, args in ran if program == "finish"] == ["-"]
    notices = [e.message for e in events if isinstance(e, Notice) and e.host == "web-1"]
    assert notices == [diagnostics.message]


def test_a_hung_hosts_heartbeat_does_not_hold_up_the_others(tmp_path: Path) -> None:
    """web-1 never answers its heartbeat; web-2's go on every 0.25 s (the hooks wait until it
    has had three), and web-1's silence is said once."""
    gate = asyncio.Event()
    beats: list[str] = []

    def on_call(host: str, program: str, args: list[str]) -> None:
        if (host, program) == ("web-2", "lock") and args[0] == "heartbeat":
            beats.append(host)
            if len(beats) >= 3:
                gate.set()

    events: list[Event] = []
    fleet = FakeFleet(hung_heartbeats={"web-1"}, on_call=on_call)
    deployment = _two_hosts_heartbeating(tmp_path, fleet, gate, events.append)
    assert deployment.status == "Succeeded"
    notices = [(e.host, e.message) for e in events if isinstance(e, Notice)]
    assert notices == [
        (
            "web-1",
            "the lock heartbeat got no answer within 0.25 s (the other hosts' heartbeats go "
            "on); after 1 s without one another deployment may take this host's lock over, and "
            "the next heartbeat that answers says so",
        )
    ]


def test_a_host_that_never_had_the_lock_is_not_heartbeated(tmp_path: Path) -> None:
    """web-2's lock could not be written (a full disk): a failed target, whose lock is not
    ours to refresh, nor said to be taken over; web-1's heartbeats go on."""
    gate = asyncio.Event()
    beats: list[str] = []

    def on_call(host: str, program: str, args: list[str]) -> None:
        if program == "lock" and args[0] == "heartbeat":
            beats.append(host)
            if beats.count("web-1") >= 3:
                gate.set()

    events: list[Event] = []
    fleet = FakeFleet(unlockable={"web-2"}, lost_locks={"web-2": "d-OTHER"}, on_call=on_call)
    deployment = _two_hosts_heartbeating(tmp_path, fleet, gate, events.append)
    assert deployment.targets["web-2"].status == "Failed"
    assert deployment.targets["web-1"].status == "Succeeded"
    assert set(beats) == {"web-1"}
    assert [e for e in events if isinstance(e, Notice)] == []


def test_a_minimum_the_selection_can_never_keep_fails_before_any_host_is_contacted(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet()
    five = DeploymentConfig("AllButNone", MinimumHealthyHosts(type="HOST_COUNT", value=5))
    deployment, events = run(tmp_path, "AllButNone", fleet, custom=five)
    assert fleet.calls == []  # not even the probe that takes the host's lock
    assert (deployment.status, deployment.error_code) == ("Failed", "HEALTH_CONSTRAINTS_INVALID")
    assert set(statuses(deployment)) == {"Skipped"}
    assert [type(e).__name__ for e in events] == ["DeploymentStarted", "DeploymentFinished"]
