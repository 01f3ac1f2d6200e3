"""``rollout``, ``rollback`` and ``sync``: deployments, run under the group's locks."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import click

from orchestrator import api
from orchestrator.cli import options as shared_options
from orchestrator.cli.context import CliContext, pass_context, usage_errors
from orchestrator.cli.exit_codes import ExitCode
from orchestrator.cli.options import APP, DEPLOYMENT_CONFIG, GROUP, OUTPUT, REPORTING
from orchestrator.cli.outcome import JunitReport, Shown, github_actions, show
from orchestrator.cli.plain import visible
from orchestrator.cli.render import LiveProgress, NdjsonSink, PlainProgress
from orchestrator.engine.rollout import HOOK_GRACE_SECONDS
from orchestrator.events import Event, EventSink, Notice
from orchestrator.hostproto.requests import MAX_SECONDS
from orchestrator.models.results import Deployment, Status


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
    if deployment.status == Status.STOPPED:
        return ExitCode.INTERRUPTED if interrupted else ExitCode.STOPPED
    if deployment.status != Status.SUCCEEDED:
        return ExitCode.FAILED
    if any(t.status == Status.FAILED for t in deployment.targets.values()):
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
    bundle_store: str | None = None
    bundle_store_endpoint: str | None = None
    events_path: Path | None = None
    output: str = "text"
    verbose: bool = False
    quiet: bool = False
    junit_path: Path | None = None

    def for_api(self) -> api.DeployOptions:
        names = {f.name for f in fields(api.DeployOptions)}
        return api.DeployOptions(**{k: v for k, v in vars(self).items() if k in names})


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
            *shared_options.BUNDLE_STORE,
            click.option(
                "--events",
                "events_path",
                type=click.Path(dir_okay=False, path_type=Path),
                metavar="FILE",
                help="Also write every event as one JSON line to FILE.",
            ),
            OUTPUT,
            *REPORTING,
        ]
    ):
        function = option(function)
    return function


Call = Callable[[list[EventSink], api.DeploymentControl], api.Outcome]


def execute(ctx: CliContext, call: Call, options: Options) -> None:
    """Run a deployment call with progress on stderr, the result on stdout; exit with its code."""
    if options.verbose and options.quiet:
        raise click.UsageError("-v/--verbose and -q/--quiet exclude each other")
    sinks: list[EventSink] = []
    notices: list[Notice] = []  # -q: shown, as notes, only when the deployment did not succeed
    if options.quiet:

        def keep_notice(event: Event) -> None:
            if isinstance(event, Notice):
                notices.append(event)

        sinks.append(keep_notice)
    else:
        sinks.append(LiveProgress(ctx.err) if ctx.live_view else PlainProgress(ctx.err))
    signals: list[int] = []
    control = _signal_control(signals)
    junit = None if options.junit_path is None else JunitReport(options.junit_path)
    try:
        with contextlib.ExitStack() as stack:
            if options.events_path is not None:
                events = options.events_path.open("w", encoding="utf-8")
                # Every event is flushed as it is written: only a write that failed (and was
                # reported) can be pending at the end.
                stack.callback(_close_quietly, events)
                sinks.append(NdjsonSink(events))
            with usage_errors():
                outcome = call(sinks, control)
        code = exit_code_for(outcome.deployment, signal.SIGINT in signals)
        if outcome.failure is not None:
            code = ExitCode.LOCAL_FAULT  # stopped because the controller's own store failed
        _report(ctx, outcome, options, code, junit, notices)
    finally:
        if junit is not None:
            junit.close()
    raise click.exceptions.Exit(code)


def _report(
    ctx: CliContext,
    outcome: api.Outcome,
    options: Options,
    code: ExitCode,
    junit: JunitReport | None,
    notices: list[Notice],
) -> None:
    """The outcome for people (stdout, stderr) and for CI (GitHub Actions, JUnit)."""
    if not options.quiet or code != ExitCode.SUCCEEDED:
        quiet_notes = [f"{n.host}: {n.message}" if n.host else n.message for n in notices]
        for note in [*quiet_notes, *outcome.notes]:
            ctx.err.print(f"note: {visible(note)}", markup=False, highlight=False)
    if outcome.failure is not None:
        _report_failure(ctx, outcome.deployment, outcome.failure)
    documents = [outcome.deployment.to_document()]
    if outcome.rollback is not None:
        documents.append(outcome.rollback.to_document())
    shown = Shown(options.output, options.verbose, options.quiet)
    show(ctx, documents, shown)
    github_actions(documents, shown)
    if junit is not None:
        junit.write(documents)


def _signal_control(signals: list[int]) -> api.DeploymentControl:
    """SIGINT/SIGTERM stop the deployment (twice: terminate running hooks); SIGUSR1 is
    `orchestrator stop` from another terminal, whose options are in the store. The handlers
    are there while the release runs."""
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

    def on_signal(control: api.DeploymentControl, signum: int) -> None:
        signals.append(signum)
        if signum == signal.SIGUSR1:
            control.stop_as_requested()
        else:
            control.stop()

    def install(control: api.DeploymentControl) -> None:
        loop = asyncio.get_running_loop()
        for signum in handled:
            loop.add_signal_handler(signum, on_signal, control, signum)

    def remove(control: api.DeploymentControl) -> None:
        loop = asyncio.get_running_loop()
        for signum in handled:
            loop.remove_signal_handler(signum)

    return api.DeploymentControl(on_start=install, on_end=remove)


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
            "Once it works again (make room on its disk, or bring its database server back), "
            f"`orchestrator status {deployment.deployment_id}` shows where each "
            "host stands; a deployment it shows as interrupted completes with "
            f"`orchestrator rollout --resume {deployment.deployment_id}`.",
            markup=False,
            highlight=False,
        )


@click.command()
@click.option("-a", "--application", "application", help="Application name in the inventory.")
@click.option("-g", "--group", "group", help="Deployment group of the application.")
@click.option(
    "-r",
    "--revision",
    "revision_spec",
    metavar="REVISION",
    help="A directory, .tar, .tar.gz, .zip, git:REPO@REF or s3://BUCKET/KEY with an appspec.yml.",
)
@shared_options.REVISION_VERSION
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
    revision_version: str | None,
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
    settings = ctx.settings()
    if resume_id is not None:
        execute(
            ctx,
            lambda sinks, control: api.resume(
                resume_id,
                ctx.inventory_path,
                options=opts.for_api(),
                settings=settings,
                sinks=sinks,
                control=control,
            ),
            opts,
        )
        return
    if not (application and group and revision_spec):
        raise click.UsageError(
            "rollout needs -a/--application, -g/--group and -r/--revision (or --resume)"
        )
    inventory = ctx.inventory()
    revision = ctx.revision(revision_spec, revision_version)
    execute(
        ctx,
        lambda sinks, control: api.deploy(
            inventory,
            application,
            group,
            revision,
            options=opts.for_api(),
            settings=settings,
            sinks=sinks,
            control=control,
        ),
        opts,
    )


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
    execute(
        ctx,
        lambda sinks, control: api.rollback(
            inventory,
            application,
            group,
            to=to,
            options=opts.for_api(),
            settings=ctx.settings(),
            sinks=sinks,
            control=control,
        ),
        opts,
    )


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
    execute(
        ctx,
        lambda sinks, control: api.sync(
            inventory,
            application,
            group,
            options=opts.for_api(),
            settings=ctx.settings(),
            sinks=sinks,
            control=control,
        ),
        opts,
    )
