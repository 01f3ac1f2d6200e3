"""Parsing what host programs print, log tails, and the history store."""

from __future__ import annotations

from pathlib import Path

from orchestrator.events import DeploymentFinished, DeploymentStarted, LifecycleEventFinished
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import HOOK_TAIL_BYTES, LastDeployment, parse_hook, parse_probe
from orchestrator.models.results import (
    Deployment,
    LifecycleEvent,
    RevisionInfo,
    Status,
    Target,
    log_tail,
)
from orchestrator.state.base import open_store
from orchestrator.state.sqlite import store_path
from orchestrator.transport.base import CommandResult


def _reply(**sections: str) -> CommandResult:
    secret = framing.new_secret()
    data = b"".join(
        framing.marker(secret, name.replace("_", "-")) + body.encode()
        for name, body in sections.items()
    )
    return framing.channel_result(0, data, b"", secret)


def test_parse_probe() -> None:
    probe = parse_probe(
        _reply(
            probe="last_successful=/r/g/d-1\nlast_deployment=d-1 Succeeded abc\n"
            "bundle=abc /r/g/d-1/bundle.tar\n",
            appspec="version: 0.0\nos: linux\n",
        )
    )
    assert probe.last_successful == "/r/g/d-1"
    assert probe.last_deployment == LastDeployment("d-1", "Succeeded", "abc")
    assert dict(probe.bundles) == {"abc": "/r/g/d-1/bundle.tar"}
    assert probe.old_appspec == "version: 0.0\nos: linux\n"
    fresh = parse_probe(_reply(probe="last_successful=\n"))
    assert (fresh.last_successful, fresh.old_appspec) == (None, None)
    gone = parse_probe(_reply(probe="last_successful=/r/g/d-0\n", appspec_missing=""))
    assert (gone.old_appspec, gone.appspec_missing) == (None, True)


def test_parse_hook() -> None:
    result = parse_hook(
        _reply(
            hook="status=124 ScriptTimedOut\nmessage=too slow\nwarning=\n",
            script_stdout="a\n",
            script_stderr="b\n",
        )
    )
    assert result is not None
    assert (result.code, result.error_code, result.ok) == (124, "ScriptTimedOut", False)
    assert (result.stdout, result.stderr, result.capped) == ("a\n", "b\n", False)
    assert parse_hook(_reply()) is None  # no reply at all: the connection went away
    garbled = parse_hook(_reply(hook="", script_stdout="", script_stderr=""))
    assert garbled is not None and garbled.error_code == "UnknownError"
    long = parse_hook(_reply(hook="status=0 Success\n", script_stdout="x" * 99 + "\n" * 70_000))
    assert long is not None and long.capped and long.stdout == "\n" * (HOOK_TAIL_BYTES - 1)


def test_log_tail_keeps_whole_lines_within_the_limit() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    tail = log_tail(text, 100)
    assert len(tail.encode()) <= 100
    assert tail.endswith("line 999\n") and tail.startswith("line ")
    assert log_tail("short\n") == "short\n"


def test_store_path_forms(tmp_path: Path) -> None:
    assert store_path(str(tmp_path / "h.sqlite")) == tmp_path / "h.sqlite"
    assert store_path(f"sqlite://{tmp_path}/x.db") == tmp_path / "x.db"
    assert store_path(str(tmp_path)) == tmp_path / "history.sqlite"


def test_store_records_documents_and_logs(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    deployment = Deployment(
        "d-A",
        "app",
        "grp",
        "gid",
        RevisionInfo("src", "sha", 1, "directory"),
        "cfg",
        create_time=1.0,
    )
    event = LifecycleEvent("AfterInstall", Status.SUCCEEDED, 1.0, 2.0, output="[stdout]hi\n")
    target = Target("h1", "127.0.0.1", [event], status=Status.SUCCEEDED)
    deployment.targets["h1"] = target
    store(DeploymentStarted(deployment))
    store(LifecycleEventFinished(deployment, target, event))
    deployment.status = Status.SUCCEEDED
    store(DeploymentFinished(deployment))
    later = Deployment(
        "d-B",
        "app",
        "other",
        "gid2",
        RevisionInfo("src", "sha", 1, "directory"),
        "cfg",
        create_time=2.0,
    )
    store.save(later)
    first, latest = store.get("d-A"), store.get()
    assert first is not None and first.to_document() == deployment.to_document()
    assert latest is not None and latest.to_document()["deploymentId"] == "d-B"
    assert [d.to_document()["deploymentId"] for d in store.history("app", "grp")] == ["d-A"]
    assert [d.to_document()["deploymentId"] for d in store.history(limit=1)] == ["d-B"]
    assert store.logs("d-A") == [("h1", "AfterInstall", "[stdout]hi\n")]
    assert store.logs("d-A", host="h2") == []
    store.close()


def test_live_and_plain_views_render_events() -> None:
    import io

    from rich.console import Console

    from orchestrator.cli.render import LiveProgress, PlainProgress, summary_line
    from orchestrator.events import (
        LifecycleEventStarted,
        Notice,
        TargetFinished,
    )
    from orchestrator.models.results import Diagnostics

    deployment = Deployment(
        "d-V", "app", "grp", "gid", RevisionInfo("src", "sha", 1, "directory"), "cfg"
    )
    event = LifecycleEvent("ValidateService")
    target = Target("h1", "127.0.0.1", [event])
    deployment.targets["h1"] = target
    for view_type, terminal in ((LiveProgress, True), (PlainProgress, False)):
        stream = io.StringIO()
        view = view_type(Console(file=stream, force_terminal=terminal, width=120))
        view(DeploymentStarted(deployment))
        view(LifecycleEventStarted(deployment, target, event))
        event.status, event.start_time, event.end_time = "Failed", 1.0, 2.0
        event.diagnostics = Diagnostics("ScriptFailed", "v.sh", "exit code 3")
        view(LifecycleEventFinished(deployment, target, event))
        view(Notice(deployment, "stopping"))
        target.status = Status.FAILED
        view(TargetFinished(deployment, target))
        deployment.status = Status.FAILED
        view(DeploymentFinished(deployment))
        text = stream.getvalue()
        assert "ScriptFailed" in text and "exit code 3" in text and "stopping" in text
        assert summary_line(deployment).split(":")[0] in text
