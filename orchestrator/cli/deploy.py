"""``orchestrator rollout``: deploy a revision to a deployment group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import click

from orchestrator.cli.context import CliContext
from orchestrator.cli.exit_codes import ExitCode
from orchestrator.cli.inspect import APP, DEPLOYMENT_CONFIG, GROUP, OUTPUT, REVISION, selected_hosts
from orchestrator.cli.render import LiveProgress, NdjsonSink, PlainProgress, deployment_table
from orchestrator.engine.deployment import HOOK_GRACE_SECONDS, DeploymentRunner, Rollout
from orchestrator.events import EventSink
from orchestrator.install_plan import build_install_plan
from orchestrator.models.results import (
    FAILED,
    STOPPED,
    SUCCEEDED,
    Deployment,
    RevisionInfo,
    new_deployment_id,
)
from orchestrator.state.store import HistoryStore
from orchestrator.transport.ssh import SshTransport

pass_context = click.make_pass_decorator(CliContext)


def exit_code_for(deployment: Deployment, interrupted: bool = False) -> ExitCode:
    if deployment.status == STOPPED:
        return ExitCode.INTERRUPTED if interrupted else ExitCode.STOPPED
    if deployment.status != SUCCEEDED:
        return ExitCode.FAILED
    if any(t.status == FAILED for t in deployment.targets.values()):
        return ExitCode.PARTIAL
    return ExitCode.SUCCEEDED


@click.command()
@APP
@GROUP
@REVISION
@DEPLOYMENT_CONFIG
@click.option("--description", default="", help="Free text kept with the deployment.")
@click.option(
    "--file-exists-behavior",
    type=click.Choice(["DISALLOW", "OVERWRITE", "RETAIN"]),
    help="For files that exist where the revision installs and that the previous install "
    "did not place; the appspec's own setting wins (default DISALLOW).",
)
@click.option(
    "--ignore-application-stop-failures",
    is_flag=True,
    help="Go on when the previous revision's ApplicationStop fails.",
)
@click.option(
    "--auto-rollback/--no-auto-rollback",
    default=None,
    help="Override the group's automatic rollback setting (rollback: a later release).",
)
@click.option(
    "--update-outdated-only",
    is_flag=True,
    help="Deploy only to hosts that do not have this revision (a later release).",
)
@click.option(
    "--lock-wait",
    type=float,
    metavar="SECONDS",
    help="Wait this long for another deployment of the group (a later release).",
)
@click.option(
    "--hook-kill-grace",
    type=click.FloatRange(min=0),
    default=HOOK_GRACE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="After a hook's timeout its process group gets SIGTERM, then SIGKILL this much later.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write every event as one JSON line to FILE.",
)
@OUTPUT
@pass_context
def rollout(
    ctx: CliContext,
    application: str,
    group: str,
    revision_spec: str,
    config_name: str | None,
    description: str,
    file_exists_behavior: str | None,
    ignore_application_stop_failures: bool,
    auto_rollback: bool | None,
    update_outdated_only: bool,
    lock_wait: float | None,
    hook_kill_grace: float,
    events_path: Path | None,
    output: str,
) -> None:
    """Deploy a revision to a deployment group over SSH.

    Every host runs ApplicationStop (the last successful install's scripts), DownloadBundle,
    BeforeInstall, Install, AfterInstall, ApplicationStart and ValidateService, in the order and
    concurrency that the deployment config's minimum of healthy hosts allows. The deployment is
    recorded in the history (see status, history, logs). Ctrl-C stops starting new hosts, lets
    running ones finish, records the deployment as Stopped and exits 130.
    """
    for flag, given in (
        ("--auto-rollback", auto_rollback is not None),
        ("--update-outdated-only", update_outdated_only),
        ("--lock-wait", lock_wait is not None),
    ):
        if given:
            raise click.UsageError(f"{flag} is not implemented yet")
    inventory = ctx.inventory()
    group_spec = inventory.group(application, group)
    hosts = selected_hosts(inventory, application, group)
    config = inventory.deployment_config(inventory.config_name_for(application, group, config_name))
    revision = ctx.revision(revision_spec)
    behavior = (
        revision.appspec.model.file_exists_behavior
        or file_exists_behavior
        or group_spec.file_exists_behavior
        or "DISALLOW"
    )
    plan = build_install_plan(revision.appspec, revision.entries, behavior)
    deployment = Deployment(
        deployment_id=new_deployment_id(),
        application=application,
        group=group,
        group_id=inventory.group_id(application, group),
        revision=RevisionInfo(
            revision_spec, revision.sha256, revision.size, revision.kind, revision.commit
        ),
        config_name=config.name,
        description=description,
        file_exists_behavior=behavior,
        ignore_application_stop_failures=ignore_application_stop_failures
        or group_spec.ignore_application_stop_failures,
    )
    store = HistoryStore.open(ctx.state)
    sinks: list[EventSink] = [store]
    sinks.append(LiveProgress(ctx.err) if ctx.err.is_terminal else PlainProgress(ctx.err))
    with contextlib.ExitStack() as stack:
        if events_path is not None:
            sinks.append(NdjsonSink(stack.enter_context(events_path.open("w", encoding="utf-8"))))
        rollout_ = Rollout(deployment, revision, plan, config, hosts, hook_kill_grace)
        interrupted = asyncio.run(_run(rollout_, sinks))
    store.close()
    if output == "json":
        click.echo(json.dumps(deployment.to_document(), indent=2))
    else:
        ctx.out.print(deployment_table(deployment.to_document()))
    raise click.exceptions.Exit(exit_code_for(deployment, interrupted))


async def _run(rollout_: Rollout, sinks: list[EventSink]) -> bool:
    """Run the deployment; SIGINT and SIGTERM ask it to stop. True if it was interrupted."""
    loop = asyncio.get_running_loop()
    signals: list[int] = []

    def request_stop(signum: int) -> None:
        signals.append(signum)
        rollout_.stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop, signum)
    try:
        await DeploymentRunner(rollout_, SshTransport(), sinks).run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return signal.SIGINT in signals
