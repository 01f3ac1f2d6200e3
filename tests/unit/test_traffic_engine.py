"""The traffic events in the engine: stop --force ends a load balancer's wait, and the hosts
left out of the load balancer are named (fake transport, a scripted load balancer)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import Control, OperatorStop
from orchestrator.errors import LoadBalancerError
from orchestrator.events import Event, LifecycleEventStarted, Notice
from orchestrator.install_plan import build_install_plan
from orchestrator.models.deployment_config import PREDEFINED
from orchestrator.models.groups import DeploymentGroup
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Deployment, Status
from orchestrator.revision import build_revision
from orchestrator.transport.base import Transport
from tests.paths import HELLO_WEB
from tests.unit.fake_transport import FakeFleet, FakeTransport
from tests.unit.test_engine import INVENTORY, new_deployment

GROUP = DeploymentGroup.model_validate(
    {"load_balancer": {"type": "haproxy", "runtime_api": "127.0.0.1:9", "backend": "web"}}
)


class ScriptedBalancer:
    """Blocks at once; AllowTraffic waits for ever (``hang``) or fails (``fail``)."""

    def __init__(self, allow: str) -> None:
        self.allow_mode = allow
        self.waiting = asyncio.Event()
        self.calls: list[str] = []

    async def block(self, host: HostSpec) -> str:
        self.calls.append(f"block {host.name}")
        return "drained"

    async def allow(self, host: HostSpec) -> str:
        self.calls.append(f"allow {host.name}")
        if self.allow_mode == "fail":
            raise LoadBalancerError(f"{host.name} never came up")
        self.waiting.set()
        await asyncio.Event().wait()  # a health check that never passes
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def _run(
    tmp_path: Path, balancer: ScriptedBalancer, config: str, force: bool
) -> tuple[Deployment, list[Event]]:
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    deployment = new_deployment(revision, config)
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    hosts = [INVENTORY.resolve_host(f"web-{i}") for i in range(1, 3)]
    events: list[Event] = []

    def factory(transport: Transport) -> ScriptedBalancer:
        return balancer

    async def go() -> Deployment:
        rollout = Rollout(
            deployment, revision, plan, PREDEFINED[config], hosts,
            group=GROUP, load_balancer=factory,
        )  # fmt: skip
        asked = OperatorStop()
        control = Control([asked])
        runner = DeploymentRunner(rollout, FakeTransport(FakeFleet()), [events.append], control)
        task = asyncio.create_task(runner.run())
        if force:
            waited = asyncio.create_task(balancer.waiting.wait())
            await asyncio.wait([task, waited], timeout=30, return_when="FIRST_COMPLETED")
            assert balancer.waiting.is_set(), "AllowTraffic never started"
            asked.ask(force=True)
            control.wake()
        return await asyncio.wait_for(task, timeout=30)

    return asyncio.run(go()), events


def _notices(events: list[Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


def test_stop_force_ends_a_wait_on_the_load_balancer_and_names_the_hosts_left_out(
    tmp_path: Path,
) -> None:
    balancer = ScriptedBalancer(allow="hang")
    deployment, events = _run(tmp_path, balancer, "CodeDeployDefault.OneAtATime", force=True)
    assert deployment.status == Status.STOPPED
    allow = next(e for e in deployment.targets["web-1"].events if e.name == "AllowTraffic")
    assert allow.status == Status.FAILED
    assert allow.diagnostics is not None
    assert "stopped with --force while putting it back" in allow.diagnostics.message
    assert balancer.calls == ["block web-1", "allow web-1"]  # web-2 never started
    left = [n for n in _notices(events) if "left out of the load balancer" in n]
    assert left == [
        "left out of the load balancer (BlockTraffic ran, AllowTraffic did not succeed): web-1"
    ]


def test_a_failing_allow_traffic_fails_the_host_and_is_named(tmp_path: Path) -> None:
    balancer = ScriptedBalancer(allow="fail")
    deployment, events = _run(tmp_path, balancer, "CodeDeployDefault.AllAtOnce", force=False)
    assert deployment.status == Status.FAILED
    for name in ("web-1", "web-2"):
        allow = next(e for e in deployment.targets[name].events if e.name == "AllowTraffic")
        assert allow.status == Status.FAILED and allow.diagnostics is not None
        assert allow.diagnostics.message == f"{name} never came up"
    assert any(n.endswith("did not succeed): web-1, web-2") for n in _notices(events))
    started = [e.event.name for e in events if isinstance(e, LifecycleEventStarted)]
    assert "AfterAllowTraffic" not in started


def test_a_deployment_that_puts_every_host_back_names_none(tmp_path: Path) -> None:
    balancer = ScriptedBalancer(allow="hang")
    balancer.allow = balancer.block  # type: ignore[method-assign]
    deployment, events = _run(tmp_path, balancer, "CodeDeployDefault.AllAtOnce", force=False)
    assert deployment.status == Status.SUCCEEDED
    assert not [n for n in _notices(events) if "load balancer" in n]
