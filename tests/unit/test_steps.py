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
