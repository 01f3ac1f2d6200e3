"""Each host's lifecycle as data: ``build_steps`` from an appspec and a group."""

from __future__ import annotations

from orchestrator.engine.steps import DownloadBundle, Hooks, Install, PreviousHooks, build_steps
from orchestrator.models.appspec import parse_appspec
from orchestrator.models.groups import DeploymentGroup
from tests.paths import HELLO_WEB

IN_PLACE = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


def test_the_in_place_lifecycle_in_codedeploys_order_with_the_appspecs_scripts() -> None:
    appspec = parse_appspec((HELLO_WEB / "appspec.yml").read_text())
    steps = build_steps(appspec, DeploymentGroup())
    assert [step.event for step in steps] == IN_PLACE
    assert steps[0] == PreviousHooks("ApplicationStop")  # the last successful install's scripts
    assert steps[1] == DownloadBundle() and steps[3] == Install()
    hooks = {step.event: step for step in steps if isinstance(step, Hooks)}
    assert list(hooks) == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
    assert [s.location for s in hooks["ValidateService"].scripts] == ["scripts/validate.sh"]
    assert hooks["ValidateService"].scripts[0].timeout == 60


def test_events_without_scripts_are_steps_still_and_building_is_pure() -> None:
    appspec = parse_appspec("version: 0.0\nos: linux\n")
    steps = build_steps(appspec)
    assert [step.event for step in steps] == IN_PLACE
    assert all(step.scripts == () for step in steps if isinstance(step, Hooks))
    assert build_steps(appspec) == steps


TRAFFIC_HOOKS = (
    "version: 0.0\nos: linux\nhooks:\n"
    "  BeforeBlockTraffic: [{location: scripts/a.sh}]\n"
    "  AfterAllowTraffic: [{location: scripts/b.sh}]\n"
)
HAPROXY = {"type": "haproxy", "runtime_api": "127.0.0.1:9999", "backend": "web"}


def test_a_load_balancer_adds_the_six_traffic_events_in_codedeploys_order() -> None:
    from orchestrator.engine.steps import AllowTraffic, BlockTraffic

    appspec = parse_appspec(TRAFFIC_HOOKS)
    steps = build_steps(appspec, DeploymentGroup.model_validate({"load_balancer": HAPROXY}))
    assert [step.event for step in steps] == [
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic",
        *IN_PLACE,
        "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
    ]  # fmt: skip
    assert steps[0] == PreviousHooks("BeforeBlockTraffic")  # the last install's, as stop's
    assert steps[1] == BlockTraffic() and steps[-2] == AllowTraffic()
    assert isinstance(steps[-1], Hooks) and steps[-1].scripts[0].location == "scripts/b.sh"


def test_traffic_hooks_without_a_load_balancer_do_not_run_and_are_warned_of() -> None:
    from orchestrator.engine.steps import unused_traffic_hooks

    appspec = parse_appspec(TRAFFIC_HOOKS, "appspec.yml")
    assert [step.event for step in build_steps(appspec, DeploymentGroup())] == IN_PLACE
    warnings = unused_traffic_hooks(appspec, DeploymentGroup())
    assert [w.split(": ")[:2] for w in warnings] == [
        ["appspec.yml:4", "hooks.BeforeBlockTraffic"],
        ["appspec.yml:5", "hooks.AfterAllowTraffic"],
    ]
    balanced = DeploymentGroup.model_validate({"load_balancer": HAPROXY})
    assert unused_traffic_hooks(appspec, balanced) == []
