"""``rollout``, ``rollback`` and ``sync``: deployments, run under the group's locks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from orchestrator.cli.context import CliContext, pass_context, ssh_transport
from orchestrator.cli.exit_codes import ExitCode
from orchestrator.cli.inspect import selected_hosts
from orchestrator.cli.limits import require_open_files
from orchestrator.cli.options import APP, DEPLOYMENT_CONFIG, GROUP, OUTPUT
from orchestrator.cli.render import LiveProgress, NdjsonSink, PlainProgress, deployment_table
from orchestrator.engine.deployment import HOOK_GRACE_SECONDS, Rollout
from orchestrator.engine.release import Release, ReleasePolicy, Releaser, cached_revision
from orchestrator.errors import RollbackImpossible, StoreError
from orchestrator.events import EventSink
from orchestrator.install_plan import build_install_plan
from orchestrator.integrations.webhooks import WebhookSink
from orchestrator.models.inventory import Inventory
from orchestrator.models.results import (
    FAILED,
    STOPPED,
    SUCCEEDED,
    Deployment,
    RevisionInfo,
    new_deployment_id,
)
from orchestrator.revision import Revision
from orchestrator.state.locks import holder_info
from orchestrator.state.store import HistoryStore
from orchestrator.transport.remote.wire import MAX_SECONDS


class _Seconds(click.ParamType[float]):
    """A duration a host program is sent: a number of seconds from 0 to MAX_SECONDS (NaN and
    infinity refused: sh could not read them)."""

    name = "seconds"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 <= seconds <= MAX_SECONDS:  # False for NaN too
            self.fail(f"{value} is not between 0 and {MAX_SECONDS} seconds", param, ctx)
        return seconds


SECONDS = _Seconds()


def exit_code_for(deployment: Deployment, interrupted: bool = False) -> ExitCode:
    if deployment.status == STOPPED:
        return ExitCode.INTERRUPTED if interrupted else ExitCode.STOPPED
    if deployment.status != SUCCEEDED:
        return ExitCode.FAILED
    if any(t.status == FAILED for t in deployment.targets.values()):
        return ExitCode.PARTIAL
    return ExitCode.SUCCEEDED


@dataclass
class Options:
    """What every deploying command accepts beyond its own arguments."""

    config_name: str | None = None
    description: str = ""
    file_exists_behavior: str | None = None
    ignore_application_stop_failures: bool = False
    auto_rollback: bool | None = None
    update_outdated_only: bool = False
    lock_wait: float | None = None
    hook_kill_grace: float = HOOK_GRACE_SECONDS
    events_path: Path | None = None
    output: str = "text"


def common_options(function: Any) -> Any:
    for option in reversed(
        [
            DEPLOYMENT_CONFIG,
            click.option("--description", default="", help="Free text kept with the deployment."),
            click.option(
                "--ignore-application-stop-failures",
                is_flag=True,
                help="Go on when the previous revision's ApplicationStop fails.",
            ),
            click.option(
                "--auto-rollback/--no-auto-rollback",
                default=None,
                help="Roll back automatically if this deployment fails (default: the group's "
                "auto_rollback setting).",
            ),
            click.option(
                "--lock-wait",
                type=click.FloatRange(min=0),
                metavar="SECONDS",
                help="Wait up to this long for another deployment of the group to finish, "
                "instead of exiting 7 at once.",
            ),
            click.option(
                "--hook-kill-grace",
                type=SECONDS,
                default=HOOK_GRACE_SECONDS,
                show_default=True,
                metavar="SECONDS",
                help="After a hook's timeout (or stop --force) its process group gets SIGTERM, "
                "then SIGKILL this much later.",
            ),
            click.option(
                "--events",
                "events_path",
                type=click.Path(dir_okay=False, path_type=Path),
                metavar="FILE",
                help="Also write every event as one JSON line to FILE.",
            ),
            OUTPUT,
        ]
    ):
        function = option(function)
    return function


def prepare(
    ctx: CliContext,
    inventory: Inventory,
    application: str,
    group: str,
    revision: Revision,
    options: Options,
    *,
    creator: str = "user",
    rollback_info: dict[str, Any] | None = None,
    behavior: str | None = None,
) -> Rollout:
    """Everything checked and planned before any host is contacted (errors exit 3)."""
    group_spec = inventory.group(application, group)
    hosts = selected_hosts(inventory, application, group)
    config = inventory.deployment_config(
        inventory.config_name_for(application, group, options.config_name)
    )
    behavior = behavior or (
        revision.appspec.model.file_exists_behavior
        or options.file_exists_behavior
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
            revision.source, revision.sha256, revision.size, revision.kind, revision.commit
        ),
        config_name=config.name,
        creator=creator,
        description=options.description,
        file_exists_behavior=behavior,
        ignore_application_stop_failures=options.ignore_application_stop_failures
        or group_spec.ignore_application_stop_failures,
        rollback_info=rollback_info,
    )
    holder = holder_info(deployment.deployment_id)
    return Rollout(
        deployment,
        revision,
        plan,
        config,
        hosts,
        options.hook_kill_grace,
        update_outdated_only=options.update_outdated_only,
        lock_holder=f"holder={holder['holder']}\npid={holder['pid']}\nsince={holder['since']}",
    )


def policy_for(
    inventory: Inventory, application: str, group: str, options: Options
) -> ReleasePolicy:
    settings = inventory.group(application, group).auto_rollback
    return ReleasePolicy(
        auto_rollback=settings.enabled if options.auto_rollback is None else options.auto_rollback,
        rollback_on_failure="DEPLOYMENT_FAILURE" in settings.events,
        rollback_on_stop="DEPLOYMENT_STOP_ON_REQUEST" in settings.events,
        lock_wait=options.lock_wait or 0.0,
    )


def execute(ctx: CliContext, rollout: Rollout, inventory: Inventory, options: Options) -> None:
    """Run a release with progress on stderr, the result on stdout; exit with its code."""
    application, group = rollout.deployment.application, rollout.deployment.group
    from orchestrator.transport.ssh import descriptors_for  # noqa: PLC0415 - asyncssh, deferred

    require_open_files(descriptors_for(rollout.hosts), len(rollout.hosts))
    policy = policy_for(inventory, application, group, options)
    triggers = inventory.group(application, group).triggers
    store = HistoryStore.open(ctx.state)
    sinks: list[EventSink] = [store]
    sinks.append(LiveProgress(ctx.err) if ctx.err.is_terminal else PlainProgress(ctx.err))
    webhooks = WebhookSink(triggers)
    if triggers:
        sinks.append(webhooks)
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        if options.events_path is not None:
            events = options.events_path.open("w", encoding="utf-8")
            # Every event is flushed as it is written: only a write that failed (and was
            # reported) can be pending at the end.
            stack.callback(_close_quietly, events)
            sinks.append(NdjsonSink(events))
        releaser = Releaser(
            store,
            ssh_transport(ctx.max_handshakes, ctx.accept_new_file),
            sinks,
            ctx.state_dir,
            ctx.cache_dir / "bundles",
        )
        release, interrupted = asyncio.run(_run(releaser, rollout, policy, store, webhooks))
    for note in [*release.notes, *webhooks.problems]:
        ctx.err.print(f"note: {note}", markup=False, highlight=False)
    if release.failure is not None:
        _report_failure(ctx, release.deployment, release.failure)
    document = release.deployment.to_document()
    if options.output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        ctx.out.print(deployment_table(document))
        if release.rollback is not None:
            ctx.out.print(deployment_table(release.rollback.to_document()))
    raise click.exceptions.Exit(exit_code_for(release.deployment, interrupted))


def _close_quietly(stream: IO[str]) -> None:
    with contextlib.suppress(OSError):
        stream.close()


def _report_failure(ctx: CliContext, deployment: Deployment, failure: str) -> None:
    """What an operator needs after a sink failed: why it stopped, and how to go on."""
    with contextlib.suppress(OSError):  # stderr may be what failed
        ctx.err.print(
            f"error: {failure}\n"
            f"The deployment {deployment.deployment_id} was stopped: hooks that were running "
            "finished, no new lifecycle event started, and the hosts keep what they have. "
            f"Make room, then `orchestrator status {deployment.deployment_id}` shows where each "
            "host stands; a deployment it shows as interrupted completes with "
            f"`orchestrator rollout --resume {deployment.deployment_id}`.",
            markup=False,
            highlight=False,
        )


async def _run(
    releaser: Releaser,
    rollout: Rollout,
    policy: ReleasePolicy,
    store: HistoryStore,
    webhooks: WebhookSink,
) -> tuple[Release, bool]:
    """SIGINT/SIGTERM stop the deployment (twice: terminate running hooks); SIGUSR1 is
    `orchestrator stop` from another terminal, whose options are in the store."""
    loop = asyncio.get_running_loop()
    signals: list[int] = []

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if signum == signal.SIGUSR1:
            current = releaser.current.deployment.deployment_id if releaser.current else ""
            asked = None
            with contextlib.suppress(StoreError):  # unreadable now: a plain stop, then
                asked = store.stop_request(current)
            rollback, force = asked or (False, False)
            releaser.request_stop(force=force, rollback=rollback)
        else:
            releaser.request_stop()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        release = await releaser.run(rollout, policy)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await webhooks.drain()
    return release, signal.SIGINT in signals


@click.command()
@click.option("-a", "--application", "application", help="Application name in the inventory.")
@click.option("-g", "--group", "group", help="Deployment group of the application.")
@click.option(
    "-r",
    "--revision",
    "revision_spec",
    metavar="REVISION",
    help="A directory, .tar, .tar.gz, .zip or git:REPO@REF with an appspec.yml.",
)
@click.option(
    "--file-exists-behavior",
    type=click.Choice(["DISALLOW", "OVERWRITE", "RETAIN"]),
    help="For files that exist where the revision installs and that the previous install "
    "did not place; the appspec's own setting wins (default DISALLOW).",
)
@click.option(
    "--update-outdated-only",
    is_flag=True,
    help="Deploy only to hosts that do not already run this revision successfully.",
)
@click.option(
    "--resume",
    "resume_id",
    metavar="DEPLOYMENT_ID",
    help="Complete a deployment whose orchestrator process died (see status): hooks "
    "that finished meanwhile are collected, the rest runs with the same rules.",
)
@common_options
@pass_context
def rollout(
    ctx: CliContext,
    /,
    application: str | None,
    group: str | None,
    revision_spec: str | None,
    resume_id: str | None,
    **options: Any,
) -> None:
    """Deploy a revision to a deployment group over SSH (-a, -g and -r are required).

    Every host runs ApplicationStop (the last successful install's scripts), DownloadBundle,
    BeforeInstall, Install, AfterInstall, ApplicationStart and ValidateService, in the order and
    concurrency that the deployment config's minimum of healthy hosts allows. One deployment per
    group at a time (exit 7, or --lock-wait). A failed deployment is rolled back when automatic
    rollback is on. Ctrl-C stops starting new events (twice: terminates running hooks) and records
    the deployment as Stopped (exit 130).
    """
    opts = Options(**options)
    if resume_id is not None:
        resume(ctx, resume_id, opts)
        return
    if not (application and group and revision_spec):
        raise click.UsageError(
            "rollout needs -a/--application, -g/--group and -r/--revision (or --resume)"
        )
    inventory = ctx.inventory()
    rollout_ = prepare(ctx, inventory, application, group, ctx.revision(revision_spec), opts)
    execute(ctx, rollout_, inventory, opts)


def resume(ctx: CliContext, deployment_id: str, opts: Options) -> None:
    store = HistoryStore.open(ctx.state)
    document = store.get(deployment_id)
    store.close()
    if document is None:
        raise click.UsageError(f"no deployment {deployment_id} in the history")
    if not document.get("interrupted"):
        state = "still running" if document["status"] == "InProgress" else document["status"]
        raise click.UsageError(f"deployment {deployment_id} was not interrupted: it is {state}")
    inventory = ctx.inventory()
    application, group = document["applicationName"], document["deploymentGroupName"]
    revision = cached_revision(
        ctx.cache_dir / "bundles", document["revision"]["sha256"], document["revision"]["source"]
    )
    opts.config_name = document["deploymentConfigName"]
    rollout_ = prepare(
        ctx, inventory, application, group, revision, opts, behavior=document["fileExistsBehavior"]
    )
    deployment = Deployment.from_document(document)
    known = {host.name for host in rollout_.hosts}
    missing = sorted(set(deployment.targets) - known)
    if missing:
        raise click.UsageError(
            f"the inventory no longer selects {', '.join(missing)} for {application}/{group}"
        )
    rollout_.deployment = deployment
    rollout_.hosts = [host for host in rollout_.hosts if host.name in deployment.targets]
    rollout_.resume = True
    execute(ctx, rollout_, inventory, opts)


def earlier_revision(
    ctx: CliContext, application: str, group: str, deployment_id: str | None, purpose: str
) -> tuple[dict[str, Any], Revision]:
    """A deployment from the history (the named one, else the group's last successful) and its
    revision from the bundle cache."""
    store = HistoryStore.open(ctx.state)
    previous = (
        store.get(deployment_id) if deployment_id else store.last_successful(application, group)
    )
    store.close()
    if previous is None:
        raise RollbackImpossible(
            f"no deployment {deployment_id}"
            if deployment_id
            else f"{application}/{group} has no successful deployment to {purpose}"
        )
    revision = cached_revision(
        ctx.cache_dir / "bundles", previous["revision"]["sha256"], previous["revision"]["source"]
    )
    return previous, revision


@click.command()
@APP
@GROUP
@click.option(
    "--to",
    "to",
    metavar="DEPLOYMENT_ID",
    help="Redeploy this deployment's revision instead of the last successful one.",
)
@common_options
@pass_context
def rollback(
    ctx: CliContext, /, application: str, group: str, to: str | None, **options: Any
) -> None:
    """Redeploy the group's last successful revision (or the one of --to) to all its hosts.

    The revision comes from the bundle cache, so hosts that still hold it receive nothing.
    """
    opts = Options(**options)
    inventory = ctx.inventory()
    previous, revision = earlier_revision(ctx, application, group, to, "roll back to")
    info = {"rollbackMessage": f"manual rollback to the revision of {previous['deploymentId']}"}
    rollout_ = prepare(
        ctx,
        inventory,
        application,
        group,
        revision,
        opts,
        creator="rollback",
        rollback_info=info,
        behavior=previous["fileExistsBehavior"],
    )
    execute(ctx, rollout_, inventory, opts)


@click.command()
@APP
@GROUP
@common_options
@pass_context
def sync(ctx: CliContext, /, application: str, group: str, **options: Any) -> None:
    """Deploy the group's last successful revision to the hosts that do not have it.

    For hosts added to the inventory later (CodeDeploy's Auto Scaling catch-up); hosts already on
    that revision are recorded as Skipped. Exit 0 when every host is up to date.
    """
    opts = Options(**options, update_outdated_only=True)
    inventory = ctx.inventory()
    previous, revision = earlier_revision(ctx, application, group, None, "sync hosts to")
    rollout_ = prepare(
        ctx,
        inventory,
        application,
        group,
        revision,
        opts,
        creator="sync",
        behavior=previous["fileExistsBehavior"],
    )
    execute(ctx, rollout_, inventory, opts)
