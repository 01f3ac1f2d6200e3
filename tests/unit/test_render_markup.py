"""Host and user text on the terminal is text, never rich markup: `[/b]` in a hook's output
used to raise inside the live view, which then stopped the deployment."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from orchestrator.cli.main import cli
from orchestrator.cli.render import LiveProgress, PlainProgress, deployment_table
from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
    TargetFinished,
)
from orchestrator.models.results import (
    Deployment,
    Diagnostics,
    LifecycleEvent,
    RevisionInfo,
    Status,
    Target,
)

MARKUP = "[/b] [bold]x[/bold] [red \\[y] [/]"


def _deployment() -> tuple[Deployment, Target, LifecycleEvent]:
    deployment = Deployment(
        "d-M", "app", "grp", "gid", RevisionInfo(f"/src {MARKUP}", "sha", 1, "directory"), "cfg"
    )
    event = LifecycleEvent("AfterInstall")
    target = Target("h1", "127.0.0.1", [event])
    deployment.targets["h1"] = target
    return deployment, target, event


def test_the_views_show_markup_in_host_output_as_text() -> None:
    for view_type, terminal in ((LiveProgress, True), (PlainProgress, False)):
        deployment, target, event = _deployment()
        stream = io.StringIO()
        view = view_type(Console(file=stream, force_terminal=terminal, width=200))
        view(DeploymentStarted(deployment))
        view(LifecycleEventStarted(deployment, target, event))
        event.status, event.start_time, event.end_time = "Failed", 1.0, 2.0
        event.diagnostics = Diagnostics("ScriptFailed", "s.sh", f"failed: {MARKUP}", MARKUP)
        view(LifecycleEventFinished(deployment, target, event))
        view(HostUnreachable(deployment, target, f"gone {MARKUP}"))
        view(Notice(deployment, f"note {MARKUP}", "h1"))
        target.status = Status.FAILED
        view(TargetFinished(deployment, target))
        deployment.status = Status.FAILED
        deployment.error_code, deployment.error_message = "X", MARKUP
        view(DeploymentFinished(deployment))
        text = stream.getvalue()
        assert f"failed: {MARKUP}" in text, view_type
        assert f"note {MARKUP}" in text, view_type


def test_the_status_table_shows_markup_in_the_record_as_text() -> None:
    deployment, target, event = _deployment()
    event.status = Status.FAILED
    event.diagnostics = Diagnostics("ScriptFailed", "s.sh", f"failed: {MARKUP}", MARKUP)
    target.status = deployment.status = Status.FAILED
    deployment.error_code, deployment.error_message = "X", MARKUP
    stream = io.StringIO()
    Console(file=stream, width=300).print(deployment_table(deployment.to_document()))
    text = stream.getvalue()
    assert f"failed: {MARKUP}" in text
    assert f"revision /src {MARKUP}" in text
    assert f"X: {MARKUP}" in text


def test_validate_hosts_and_plan_show_markup_in_names_as_text(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "hosts:\n"
        "  h1:\n"
        f"    address: '10.0.0.1'\n    zone: '[red z'\n    tags: {{role: '{MARKUP}'}}\n"
        "applications:\n  app:\n    deployment_groups:\n      grp: {hosts: [h1]}\n"
    )
    bundle = tmp_path / "bundle [red]x [bold \\[y]"
    bundle.mkdir()
    # A hook location with a closing tag: the plan's table of events showed it as markup.
    (bundle / "s" / "x[").mkdir(parents=True)
    (bundle / "s" / "x[" / "]y.sh").write_text("#!/bin/sh\n")
    (bundle / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: 's/x[/]y.sh'\n"
    )
    runner = CliRunner()
    base = ["-i", str(inventory)]
    validate = runner.invoke(cli, [*base, "validate", "-r", str(bundle)])
    assert validate.exit_code == 0, validate.output
    assert f"ok {bundle}:" in validate.stderr
    hosts = runner.invoke(cli, [*base, "hosts", "-a", "app", "-g", "grp"], terminal_width=300)
    assert hosts.exit_code == 0, hosts.output
    assert f"role={MARKUP}" in hosts.stdout and "[red z" in hosts.stdout
    plan = runner.invoke(cli, [*base, "plan", "-a", "app", "-g", "grp", "-r", str(bundle)])
    assert plan.exit_code == 0, plan.output
    assert f"revision {bundle} " in " ".join(plan.stdout.split())
    assert "s/x[/]y.sh" in plan.stdout
