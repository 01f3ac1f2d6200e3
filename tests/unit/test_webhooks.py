"""Triggers: which engine events become which notifications, their payloads, and the sending."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import get_args

from orchestrator.engine.deployment import DeploymentRunner, Rollout
from orchestrator.install_plan import build_install_plan
from orchestrator.models.deployment_config import PREDEFINED
from orchestrator.models.inventory import Trigger, TriggerEvent
from orchestrator.revision import build_revision
from orchestrator.webhooks import WebhookSink, where
from tests.paths import HELLO_WEB
from tests.unit.fake_transport import FakeFleet, FakeTransport
from tests.unit.test_engine import INVENTORY, new_deployment
from tests.webhook_receiver import receiver

EVERYTHING = list(get_args(TriggerEvent))


def deploy(tmp_path: Path, sink: WebhookSink, fleet: FakeFleet) -> str:
    """An AllAtOnce deployment to web-1..3 on the fake transport; its status."""
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    config = "CodeDeployDefault.AllAtOnce"
    hosts = [INVENTORY.resolve_host(f"web-{i}") for i in (1, 2, 3)]
    rollout = Rollout(new_deployment(revision, config), revision, plan, PREDEFINED[config], hosts)

    async def go() -> str:
        deployment = await DeploymentRunner(rollout, FakeTransport(fleet), [sink]).run()
        await sink.drain(timeout=20)
        return deployment.status

    return asyncio.run(go())


def test_a_deployment_notifies_each_trigger_of_the_events_it_names(tmp_path: Path) -> None:
    with receiver() as (url, received):
        triggers = [
            Trigger(name="all", url=f"{url}/all", events=EVERYTHING),
            Trigger(
                name="chat",
                url=f"{url}/chat?token=secret",
                events=["DeploymentFailure", "InstanceFailure"],
                headers={"Authorization": "Bearer ${CHAT_TOKEN}"},
            ),
        ]
        sink = WebhookSink(triggers, {"CHAT_TOKEN": "t0k3n"})
        status = deploy(tmp_path, sink, FakeFleet(failing_hooks={("web-2", "ValidateService")}))
    # AllAtOnce: one healthy host is enough, so the deployment succeeds.
    assert status == "Succeeded" and sink.problems == []
    every = received.events("/all")
    assert every[0] == "DeploymentStart" and every[-1] == "DeploymentSuccess"
    assert (
        sorted(every[1:-1]) == ["InstanceFailure"] + ["InstanceStart"] * 3 + ["InstanceSuccess"] * 2
    )
    chat = [(h, body) for path, h, body in received.posts if path.startswith("/chat")]
    assert [h["X-Orchestrator-Event"] for h, _ in chat] == ["InstanceFailure"]
    headers, failure = chat[0]
    assert headers["Authorization"] == "Bearer t0k3n"
    assert failure["instanceId"] == "web-2" and failure["instanceStatus"] == "Failed"
    assert failure["eventTriggerName"] == "chat" and failure["deploymentId"] == "d-TEST00001"
    validate = next(
        e for e in failure["lifecycleEvents"] if e["LifecycleEvent"] == "ValidateService"
    )
    assert validate["LifecycleEventStatus"] == "Failed" and validate["EndTime"].isdigit()
    end = next(
        body for path, h, body in received.posts if h["X-Orchestrator-Event"] == "DeploymentSuccess"
    )
    assert end["status"] == "SUCCEEDED" and end["applicationName"] == "hello"
    assert end["deploymentGroupName"] == "web" and end["completeTime"].isdigit()
    assert end["deploymentOverview"] == {
        "Failed": "1",
        "InProgress": "0",
        "Pending": "0",
        "Skipped": "0",
        "Succeeded": "2",
    }
    assert end["errorInformation"] is None and {"region", "accountId"} <= end.keys()


def test_a_failed_deployment_says_why(tmp_path: Path) -> None:
    with receiver() as (url, received):
        sink = WebhookSink([Trigger(name="ops", url=url, events=["DeploymentFailure"])], {})
        failing = {(f"web-{i}", "ValidateService") for i in (1, 2, 3)}
        assert deploy(tmp_path, sink, FakeFleet(failing_hooks=failing)) == "Failed"
    [(_, headers, end)] = received.posts
    assert headers["X-Orchestrator-Event"] == "DeploymentFailure" and end["status"] == "FAILED"
    assert end["errorInformation"]["ErrorCode"] == "HEALTH_CONSTRAINTS"
    assert end["deploymentOverview"]["Failed"] == "3"


def test_a_trigger_that_cannot_be_sent_is_a_note_never_a_failure(tmp_path: Path) -> None:
    with receiver(status=500) as (url, received):
        triggers = [
            Trigger(
                name="down", url="http://127.0.0.1:9/hook?key=s3cret", events=["DeploymentStart"]
            ),
            Trigger(name="err", url=f"{url}/err", events=["DeploymentSuccess"]),
            Trigger(
                name="unset",
                url=f"{url}/unset",
                events=["DeploymentStart"],
                headers={"Authorization": "Bearer ${NOT_SET_ANYWHERE}"},
            ),
        ]
        sink = WebhookSink(triggers, {})
        status = deploy(tmp_path, sink, FakeFleet())
    assert status == "Succeeded"
    assert received.events("/unset") == []  # never sent without its credentials
    problems = sorted(sink.problems)
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        "trigger down: DeploymentStart to http://127.0.0.1:9/hook failed: "
    )
    assert (
        problems[1]
        == f"trigger err: DeploymentSuccess to {url}/err failed: HTTP 500 Internal Server Error"
    )
    assert problems[2] == (
        f"trigger unset: DeploymentStart to {url}/unset not sent: ${{NOT_SET_ANYWHERE}} is not set"
    )
    assert not any("s3cret" in p for p in problems)


def test_where_leaves_out_what_may_be_secret() -> None:
    assert where("https://user:pw@hooks.example:8443/deploys?token=x#y") == (
        "https://hooks.example:8443/deploys"
    )


def test_a_host_that_cannot_be_reached_is_an_instance_failure(tmp_path: Path) -> None:
    with receiver() as (url, received):
        sink = WebhookSink([Trigger(name="ops", url=url, events=["InstanceFailure"])], {})
        assert deploy(tmp_path, sink, FakeFleet(unreachable={"web-3"})) == "Succeeded"
    [(_, _, failure)] = received.posts
    assert failure["instanceId"] == "web-3" and failure["instanceStatus"] == "Failed"
