"""The library API without hosts: plans built once, rules recorded, errors of one hierarchy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from orchestrator import api, install_plan
from orchestrator.api.deploying import new_rollout
from orchestrator.errors import InvalidRequest, NotInHistory
from orchestrator.hostproto import install_stream
from orchestrator.models.deployment_config import PREDEFINED, DeploymentConfig, DeploymentRules
from orchestrator.models.inventory import load_inventory
from orchestrator.models.results import Deployment
from tests.paths import HELLO_WEB, REPO

EXAMPLE = REPO / "inventory.example.yaml"


def test_the_install_plan_is_built_once_per_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[str] = []
    real = install_plan._Builder

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any) -> None:
            built.append(args[2])
            super().__init__(*args)

    monkeypatch.setattr(install_plan, "_Builder", Counting)
    settings = api.Settings(cache=tmp_path)
    revision = api.load_revision(str(HELLO_WEB), settings)  # checked, as `rollout -r` does
    options = api.DeployOptions(file_exists_behavior="OVERWRITE")
    rollout = new_rollout(load_inventory(EXAMPLE), "shop", "web-prod", revision, options)
    assert len(built) == 1
    fresh = install_plan.build_install_plan(
        revision.appspec, revision.entries, rollout.plan.behavior
    )
    assert install_stream.encoded(rollout.plan) == install_stream.encoded(fresh)


def test_a_new_deployment_records_the_rules_it_runs_under(tmp_path: Path) -> None:
    revision = api.load_revision(str(HELLO_WEB), api.Settings(cache=tmp_path))
    options = api.DeployOptions(config_name="CodeDeployDefault.HalfAtATime", hook_kill_grace=3)
    rollout = new_rollout(load_inventory(EXAMPLE), "shop", "web-prod", revision, options)
    document = rollout.deployment.to_document()
    rules = DeploymentRules.from_document(document["deploymentRules"])
    assert rules == DeploymentRules(PREDEFINED["CodeDeployDefault.HalfAtATime"], 3.0)
    assert Deployment.from_document(document).rules == document["deploymentRules"]


def test_a_custom_zonal_config_survives_its_record() -> None:
    inventory = load_inventory(EXAMPLE)
    for name in inventory.model.deployment_configs:
        config = inventory.deployment_config(name)
        assert DeploymentConfig.from_document(config.to_document()) == config


def test_records_from_before_the_rules_have_none() -> None:
    revision = {"source": "x", "sha256": "0" * 64, "size": 1, "type": "directory"}
    document = Deployment.from_document(
        {
            "deploymentId": "d-OLD",
            "applicationName": "a",
            "deploymentGroupName": "g",
            "deploymentGroupId": "gid",
            "deploymentConfigName": "CodeDeployDefault.OneAtATime",
            "creator": "user",
            "description": "",
            "status": "Succeeded",
            "revision": revision,
            "fileExistsBehavior": "DISALLOW",
            "ignoreApplicationStopFailures": False,
            "createTime": None,
        }
    ).to_document()
    assert "deploymentRules" not in document and "interrupted" not in document


def test_a_missing_deployment_is_an_error_of_the_hierarchy_not_a_click_exception() -> None:
    with pytest.raises(NotInHistory):
        api.status("d-NOSUCHONE")
    with pytest.raises(InvalidRequest):
        api.resume("d-NOSUCHONE", EXAMPLE)
    assert issubclass(NotInHistory, orchestrator.OrchestratorError)


def test_the_package_exports_the_api() -> None:
    for name in ("deploy", "rollback", "sync", "resume", "stop", "status", "history"):
        assert getattr(orchestrator, name) is getattr(api, name)
    assert orchestrator.Deployment is Deployment


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"file_exists_behavior": "RETIAN"}, "file_exists_behavior 'RETIAN' is not one of"),
        ({"hook_kill_grace": -1.0}, "hook_kill_grace must be a number of seconds"),
        ({"hook_kill_grace": float("nan")}, "hook_kill_grace must be a number of seconds"),
        ({"lock_wait": -5}, "lock_wait must be a number of seconds"),
        ({"lock_wait": "10"}, "lock_wait must be a number of seconds"),
    ],
)
def test_deploy_options_the_command_line_would_refuse_are_refused(
    changes: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidRequest, match=says):
        api.DeployOptions(**changes)
    assert api.DeployOptions(file_exists_behavior="RETAIN", lock_wait=0, hook_kill_grace=0)


def test_a_deployment_call_in_a_running_event_loop_is_refused_before_anything_is_built(
    tmp_path: Path,
) -> None:
    async def in_a_loop() -> None:
        with pytest.raises(InvalidRequest, match=r"asyncio\.to_thread\(deploy"):
            api.deploy(EXAMPLE, "hello", "web", str(tmp_path / "no-such-revision"))
        with pytest.raises(InvalidRequest, match=r"asyncio\.to_thread\(resume"):
            api.resume("d-NOSUCHONE", EXAMPLE)

    asyncio.run(in_a_loop())


def test_a_damaged_record_of_the_rules_is_a_store_error_naming_the_deployment(
    tmp_path: Path,
) -> None:
    from orchestrator.errors import StoreError
    from orchestrator.state.base import open_store

    revision = {"source": "x", "sha256": "0" * 64, "size": 1, "type": "directory"}
    recorded = Deployment.from_document(
        {
            "deploymentId": "d-DAMAGED",
            "applicationName": "hello",
            "deploymentGroupName": "web",
            "deploymentGroupId": "gid",
            "deploymentConfigName": "CodeDeployDefault.OneAtATime",
            "creator": "user",
            "description": "",
            "status": "InProgress",
            "revision": revision,
            "fileExistsBehavior": "DISALLOW",
            "ignoreApplicationStopFailures": False,
            "createTime": None,
        }
    )
    recorded.interrupted = True
    recorded.rules = {"hookKillGraceSeconds": 5}  # its deploymentConfig lost
    settings = api.Settings(state=str(tmp_path / "history.sqlite"), cache=tmp_path / "cache")
    store = open_store(settings.state)
    try:
        store.save(recorded)
    finally:
        store.close()
    with pytest.raises(StoreError, match="d-DAMAGED.*damaged record"):
        api.resume("d-DAMAGED", EXAMPLE, settings=settings)
