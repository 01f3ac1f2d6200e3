"""Stop sources: a source of one's own stops a deployment on the fake transport, and the
sources that ship (this process's requests, `orchestrator stop`'s in the store) merge as the
engine's stop rules say."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator.engine import stopping as stopping_module
from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import (
    Control,
    OperatorStop,
    Stopping,
    StopRequest,
    StopSource,
    StoreStop,
)
from orchestrator.errors import StoreError
from orchestrator.events import (
    Event,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
    ZoneBaking,
)
from orchestrator.install_plan import build_install_plan
from orchestrator.models.deployment_config import (
    PREDEFINED,
    DeploymentConfig,
    MinimumHealthyHosts,
    ZonalSettings,
)
from orchestrator.models.inventory import parse_inventory
from orchestrator.models.results import Deployment, RevisionInfo
from orchestrator.revision import build_revision
from orchestrator.state.base import RecordedStop
from tests.paths import HELLO_WEB
from tests.unit.fake_transport import FakeFleet, FakeTransport
from tests.unit.test_engine import INVENTORY, new_deployment


class Alarm:
    """A source of one's own: goes off once web-1's Install has finished."""

    def __init__(self) -> None:
        self.firing = False
        self.polled: list[str] = []

    def poll(self, deployment_id: str) -> StopRequest | None:
        self.polled.append(deployment_id)
        if not self.firing:
            return None
        self.firing = False  # said once; the engine remembers
        return StopRequest(error_code="ALARM_ACTIVE", message="alarm latency-high is in ALARM")


def test_a_stop_source_of_ones_own_stops_the_deployment(tmp_path: Path) -> None:
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    config = "CodeDeployDefault.OneAtATime"
    hosts = [INVENTORY.resolve_host(f"web-{i}") for i in (1, 2, 3)]
    rollout = Rollout(new_deployment(revision, config), revision, plan, PREDEFINED[config], hosts)
    alarm = Alarm()
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, LifecycleEventFinished) and event.event.name == "Install":
            alarm.firing = True

    async def go() -> Deployment:
        runner = DeploymentRunner(rollout, FakeTransport(FakeFleet()), [sink], Control([alarm]))
        return await runner.run()

    deployment = asyncio.run(go())
    assert deployment.status == "Stopped"
    assert (deployment.error_code, deployment.error_message) == (
        "ALARM_ACTIVE",
        "alarm latency-high is in ALARM",
    )
    assert [t.status for t in deployment.targets.values()] == ["Failed", "Skipped", "Skipped"]
    web1 = {e.name: e.status for e in deployment.targets["web-1"].events}
    assert web1["Install"] == "Succeeded" and web1["AfterInstall"] == "Skipped"
    started = [e.event.name for e in events if isinstance(e, LifecycleEventStarted)]
    assert started[-1] == "Install"  # nothing started after the alarm
    assert set(alarm.polled) == {"d-TEST00001"}
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == [
        "stopping: no new lifecycle event starts; running hooks finish "
        "(ask again to terminate them)"
    ]


def _stopping(*sources: StopSource) -> tuple[Stopping, list[Event]]:
    events: list[Event] = []
    revision = RevisionInfo("hello-web", "0" * 64, 0, "directory")
    deployment = Deployment("d-1", "a", "g", "gid", revision, "CodeDeployDefault.OneAtATime")
    return Stopping(Control(sources), deployment, events.append), events


def test_a_second_request_escalates_whichever_source_it_comes_from() -> None:
    asked = OperatorStop()
    stored = StoreStop(_Store((True, False)))
    stopping, events = _stopping(asked, stored)
    assert not stopping.check()
    asked.ask()
    assert stopping.check() and not stopping.forced and not stopping.rollback
    stored.ring()
    assert stopping.check() and stopping.forced and stopping.rollback
    assert stopping.reason() == ("MANUAL_STOP", "the deployment was stopped")
    assert [e.message for e in events if isinstance(e, Notice)] == [
        "stopping: no new lifecycle event starts; running hooks finish "
        "(ask again to terminate them)",
        "stopping: terminating running hooks",
    ]


def test_two_requests_before_a_poll_force() -> None:
    asked = OperatorStop()
    stopping, _ = _stopping(asked)
    asked.ask()
    asked.ask()
    assert stopping.check() and stopping.forced


def test_the_store_is_read_only_when_its_signal_came_and_unreadable_is_a_plain_stop() -> None:
    store = _Store(None, broken=True)
    stored = StoreStop(store)
    stopping, _ = _stopping(stored)
    assert not stopping.check() and store.reads == 0
    stored.ring()
    assert stopping.check() and not stopping.forced and store.reads == 1
    assert not stopping.rollback


def test_a_failed_sink_is_the_recorded_reason_and_a_later_request_forces() -> None:
    asked = OperatorStop()
    stopping, _ = _stopping(asked)
    stopping.fail("cannot write the history")
    assert stopping.check() and not stopping.forced
    asked.ask()
    assert stopping.check() and stopping.forced
    assert stopping.reason() == ("INTERNAL_ERROR", "stopped: cannot write the history")


class _Store:
    def __init__(self, asked: tuple[bool, bool] | None, broken: bool = False) -> None:
        self.asked = None if asked is None else RecordedStop(*asked, requested=1.0)
        self.broken = broken
        self.reads = 0

    def stop_request(self, deployment_id: str) -> RecordedStop | None:
        self.reads += 1
        if self.broken:
            raise StoreError(Path("/tmp/h.sqlite"), "cannot be read", OSError(5, "I/O error"))
        return self.asked


def test_unsignalled_the_store_is_read_about_once_a_second_and_each_request_taken_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A program using the API catches no SIGUSR1: `orchestrator stop` only records its
    request, which a poll reads when the store was not read for a second."""
    store = _Store(None)
    stored = StoreStop(store)
    stopping, _ = _stopping(stored)
    assert not stopping.check() and store.reads == 0  # read less than a second ago
    monkeypatch.setattr(stopping_module, "STORE_READ_INTERVAL", 0.0)
    assert not stopping.check() and store.reads == 1  # nothing asked
    store.asked = RecordedStop(rollback=False, force=False, requested=5.0)
    assert stopping.check() and not stopping.forced
    stored.ring()  # its signal, after the request was read unasked: the same request
    assert stopping.check() and not stopping.forced and store.reads == 3
    store.asked = RecordedStop(rollback=True, force=False, requested=6.0)  # asked again
    assert stopping.check() and stopping.forced and stopping.rollback


class _BrokenSource:
    def poll(self, deployment_id: str) -> StopRequest | None:
        raise KeyError("oops")


def test_a_source_that_raises_stops_the_deployment_as_an_internal_error() -> None:
    asked = OperatorStop()
    stopping, events = _stopping(_BrokenSource(), asked)
    assert stopping.check() and not stopping.forced
    assert stopping.check()  # said once
    code, message = stopping.reason()
    assert code == "INTERNAL_ERROR" and "stop source _BrokenSource failed" in message
    assert [e.message for e in events if isinstance(e, Notice)] == [
        "stopping: stop source _BrokenSource failed (KeyError('oops')); running hooks finish, "
        "no new lifecycle event starts"
    ]
    asked.ask()  # the other sources are still polled
    assert stopping.check() and stopping.forced


def test_a_source_that_wakes_the_engine_ends_a_zones_bake_at_once(tmp_path: Path) -> None:
    """Zone a deploys, then a ten-minute bake; a request 0.2 s into it, with a wake-up, ends
    the deployment there: zone b never starts."""
    inventory = parse_inventory(
        "hosts:\n"
        "  web-1: {address: 127.0.0.1, zone: a, tags: {role: web}}\n"
        "  web-2: {address: 127.0.0.2, zone: b, tags: {role: web}}\n"
        "applications:\n  hello:\n    deployment_groups:\n      web: {tag_sets: [[{key: role}]]}\n"
    )
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    none = MinimumHealthyHosts(type="HOST_COUNT", value=0)
    config = DeploymentConfig("Zonal", none, ZonalSettings(600, 600, none))
    hosts = [inventory.resolve_host("web-1"), inventory.resolve_host("web-2")]
    rollout = Rollout(new_deployment(revision, "Zonal"), revision, plan, config, hosts)
    asked = OperatorStop()
    control = Control([asked])
    events: list[Event] = []

    def ask() -> None:
        asked.ask()
        control.wake()

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, ZoneBaking):
            asyncio.get_running_loop().call_later(0.2, ask)

    async def go() -> Deployment:
        runner = DeploymentRunner(rollout, FakeTransport(FakeFleet()), [sink], control)
        return await asyncio.wait_for(runner.run(), timeout=20)

    deployment = asyncio.run(go())
    assert deployment.status == "Stopped" and deployment.error_code == "MANUAL_STOP"
    assert [t.status for t in deployment.targets.values()] == ["Succeeded", "Skipped"]
    assert [type(e).__name__ for e in events].count("ZoneBaking") == 1
