"""Triggers: which engine events become which notifications, their payloads, and the sending."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.events import DeploymentStarted
from orchestrator.install_plan import build_install_plan
from orchestrator.integrations.webhooks import WebhookSink, where
from orchestrator.models.deployment_config import PREDEFINED
from orchestrator.models.groups import Trigger, TriggerEvent
from orchestrator.revision import build_revision
from tests.paths import HELLO_WEB, REPO
from tests.unit.fake_transport import FakeFleet, FakeTransport
from tests.unit.test_engine import INVENTORY, new_deployment
from tests.webhook_receiver import receiver, trickler

EVERYTHING = list(get_args(TriggerEvent))


def deploy(tmp_path: Path, sink: WebhookSink, fleet: FakeFleet, drain: float = 20) -> str:
    """An AllAtOnce deployment to web-1..3 on the fake transport; its status once the event
    loop has closed (what a process waits for before it can exit)."""
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    config = "CodeDeployDefault.AllAtOnce"
    hosts = [INVENTORY.resolve_host(f"web-{i}") for i in (1, 2, 3)]
    rollout = Rollout(new_deployment(revision, config), revision, plan, PREDEFINED[config], hosts)

    async def go() -> str:
        deployment = await DeploymentRunner(rollout, FakeTransport(fleet), [sink]).run()
        await sink.drain(timeout=drain)
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
    assert problems[0].startswith("trigger down: DeploymentStart to http://127.0.0.1:9 failed: ")
    assert (
        problems[1]
        == f"trigger err: DeploymentSuccess to {url} failed: HTTP 500 Internal Server Error"
    )
    assert problems[2] == (
        f"trigger unset: DeploymentStart to {url} not sent: ${{NOT_SET_ANYWHERE}} is not set"
    )
    assert not any("s3cret" in p for p in problems)


def test_where_leaves_out_what_may_be_secret() -> None:
    # Chat services put their token in the path: only the origin is shown.
    assert where("https://user:pw@hooks.example:8443/services/T0/B0/t0ken?token=x#y") == (
        "https://hooks.example:8443"
    )


def test_a_host_that_cannot_be_reached_is_an_instance_failure(tmp_path: Path) -> None:
    with receiver() as (url, received):
        sink = WebhookSink([Trigger(name="ops", url=url, events=["InstanceFailure"])], {})
        assert deploy(tmp_path, sink, FakeFleet(unreachable={"web-3"})) == "Succeeded"
    [(_, _, failure)] = received.posts
    assert failure["instanceId"] == "web-3" and failure["instanceStatus"] == "Failed"


def test_a_trickling_receiver_cannot_hold_the_end_past_the_deadline(tmp_path: Path) -> None:
    # Every read the client makes gets a byte in time, so no per-read timeout ever fires: only
    # a deadline on the whole can end it. Before: the urllib thread held the loop's end (and
    # so the process's exit) for as long as the receiver kept sending.
    with trickler() as (url, trickled):
        sink = WebhookSink([Trigger(name="slow", url=url, events=EVERYTHING)], {})
        start = time.monotonic()
        status = deploy(tmp_path, sink, FakeFleet(), drain=1.0)
        elapsed = time.monotonic() - start
    assert status == "Succeeded"
    assert trickled.arrivals, "the receiver was never reached"
    assert elapsed < 15, f"the end took {elapsed:.1f} s with a drain deadline of 1 s"
    # The one in flight and those queued behind it (fewer if the first ran out of its own 10 s).
    [problem] = sink.problems
    assert re.fullmatch(
        r"trigger slow: [1-8] notifications? not sent: the 1 s deadline after the deployment "
        r"passed",
        problem,
    ), problem


def test_each_notification_has_a_deadline_of_its_own(tmp_path: Path) -> None:
    with trickler() as (url, trickled), receiver() as (healthy, received):
        triggers = [
            Trigger(name="slow", url=url, events=["DeploymentStart", "DeploymentSuccess"]),
            Trigger(name="ok", url=healthy, events=["DeploymentSuccess"]),
        ]
        sink = WebhookSink(triggers, {}, send_timeout=0.5)
        start = time.monotonic()
        assert deploy(tmp_path, sink, FakeFleet(), drain=30) == "Succeeded"
        elapsed = time.monotonic() - start
    # Both of the slow trigger's were tried, each given up after its own half second.
    assert len(trickled.arrivals) == 2 and elapsed < 15, elapsed
    assert received.events() == ["DeploymentSuccess"]
    assert sink.problems == [
        f"trigger slow: {name} to {url} failed: no complete answer within 0.5 s"
        for name in ("DeploymentStart", "DeploymentSuccess")
    ]


def test_a_redirect_is_not_followed_and_the_credentials_stay_where_they_were_sent(
    tmp_path: Path,
) -> None:
    with receiver() as (elsewhere, stolen):
        moved = {"Location": f"{elsewhere}/steal?key=s3cret"}
        with receiver(302, moved) as (url, received):
            trigger = Trigger(
                name="moved",
                url=f"{url}/hook",
                events=["DeploymentStart"],
                headers={"Authorization": "Bearer ${TOKEN}"},
            )
            sink = WebhookSink([trigger], {"TOKEN": "t0k3n"})
            assert deploy(tmp_path, sink, FakeFleet()) == "Succeeded"
    assert [(method, path) for method, path, _ in received.requests] == [("POST", "/hook")]
    assert stolen.requests == []  # before: urllib followed as a GET, Authorization and all
    assert sink.problems == [
        f"trigger moved: DeploymentStart to {url} failed: HTTP 302 Found, redirected to "
        f"{elsewhere} (redirects are not followed)"
    ]


def test_a_header_value_that_would_split_the_request_is_refused_and_never_shown(
    tmp_path: Path,
) -> None:
    with receiver() as (url, received):
        trigger = Trigger(
            name="chat",
            url=url,
            events=["DeploymentStart"],
            headers={"X-Id": "fixed", "Authorization": "Bearer ${TOKEN}"},
        )
        sink = WebhookSink([trigger], {"TOKEN": "t0k3n\r\nX-Injected: yes"})
        assert deploy(tmp_path, sink, FakeFleet()) == "Succeeded"
    assert received.requests == []
    assert sink.problems == [
        f"trigger chat: DeploymentStart to {url} not sent: header Authorization: ${{TOKEN}} "
        "holds a carriage return, line feed or other control character"
    ]  # before: the whole value, token and all, inside urllib's error


class _Exploding(Mapping[str, str]):
    """An environment whose every read fails: a fault the notifier did not foresee."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("the environment exploded")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_nothing_a_trigger_does_can_change_the_outcome(tmp_path: Path) -> None:
    # A URL the inventory refuses (port 99999) but built around its checks, and an environment
    # that fails: before, a ValueError killed the sender and drain() raised it.
    triggers = [
        Trigger.model_construct(
            name="bad-port", url="http://127.0.0.1:99999/", events=EVERYTHING, headers={}
        ),
        Trigger(
            name="env", url="http://127.0.0.1:9/", events=["DeploymentStart"], headers={"A": "${B}"}
        ),
    ]
    sink = WebhookSink(triggers, _Exploding())
    assert deploy(tmp_path, sink, FakeFleet()) == "Succeeded"
    assert len(sink.problems) >= 2
    bad_port = "trigger bad-port: DeploymentStart to http://127.0.0.1:99999 failed: "
    assert any(p.startswith(bad_port) for p in sink.problems), sink.problems
    assert (
        "trigger env: DeploymentStart to http://127.0.0.1:9 failed: unexpected RuntimeError: "
        "the environment exploded"
    ) in sink.problems


def test_a_notification_that_cannot_even_be_queued_is_a_note_not_an_exception(
    tmp_path: Path,
) -> None:
    # Outside an event loop no sender can start: before, the RuntimeError reached the engine,
    # which stops a deployment whose sink fails.
    revision = build_revision(str(HELLO_WEB), tmp_path / "cache")
    sink = WebhookSink(
        [Trigger(name="ops", url="http://127.0.0.1:9/", events=["DeploymentStart"])], {}
    )
    sink(DeploymentStarted(new_deployment(revision, "CodeDeployDefault.AllAtOnce")))
    assert sink.problems == [
        "trigger notifications of DeploymentStarted not sent: unexpected RuntimeError: "
        "no running event loop"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://[::1]:8443/",
        "https://hooks.example./deploys?token=x",
        "HTTPS://Hooks.Example/",
        "https://bücher.example/",
        "http://internal_host:1/",
    ],
)
def test_a_url_a_client_can_send_to_is_accepted(url: str) -> None:
    Trigger(name="ok", url=url, events=["DeploymentStart"])


def test_a_bad_header_value_in_the_inventory_is_exit_3_and_never_quoted() -> None:
    inventory = (
        REPO / "tests" / "bad-input" / "inventory" / "trigger-header-value-with-newline.yaml"
    )
    result = CliRunner().invoke(cli, ["-i", str(inventory), "validate"])
    assert result.exit_code == 3
    assert "headers.X-Token: the value holds a carriage return" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_what_a_receiver_says_back_never_shows_a_header_value(tmp_path: Path) -> None:
    with receiver(401, echo="Authorization") as (url, received):
        trigger = Trigger(
            name="chat",
            url=url,
            events=["DeploymentStart"],
            headers={"Authorization": "Bearer ${TOKEN}"},
        )
        sink = WebhookSink([trigger], {"TOKEN": "t0k3n"})
        assert deploy(tmp_path, sink, FakeFleet()) == "Succeeded"
    assert received.events() == ["DeploymentStart"]
    # Before: "HTTP 401 Bearer t0k3n", the reason phrase as the receiver wrote it.
    assert sink.problems == [f"trigger chat: DeploymentStart to {url} failed: HTTP 401 Bearer ***"]


def test_the_payload_is_chosen_for_every_event_type() -> None:
    from orchestrator.integrations.webhooks import _payload

    with pytest.raises(AssertionError):
        _payload("t", object())  # type: ignore[arg-type]
