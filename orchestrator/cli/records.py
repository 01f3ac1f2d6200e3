"""``status``, ``history`` and ``logs``: what the deployment history holds."""

from __future__ import annotations

import json

import click
from rich.table import Table
from rich.text import Text

from orchestrator import api
from orchestrator.cli.context import CliContext, pass_context, usage_errors
from orchestrator.cli.options import OUTPUT
from orchestrator.cli.plain import deployment_lines, history_line
from orchestrator.cli.render import deployment_table, styled
from orchestrator.models.results import Status


@click.command()
@click.argument("deployment_id", required=False)
@OUTPUT
@pass_context
def status(ctx: CliContext, deployment_id: str | None, output: str) -> None:
    """One deployment, the latest if DEPLOYMENT_ID is omitted: per host, per lifecycle event,
    status, times and diagnostics. --output json prints the same document as rollout; off a
    terminal, whole lines that each start with the host."""
    with usage_errors():
        document = api.status(deployment_id, settings=ctx.settings()).to_document()
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    elif ctx.tables:
        ctx.out.print(deployment_table(document))
    else:
        click.echo("\n".join(deployment_lines(document)))


@click.command()
@click.option("-a", "--application", help="Only this application.")
@click.option("-g", "--group", help="Only this deployment group.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many deployments to list, newest first.",
)
@OUTPUT
@pass_context
def history(
    ctx: CliContext, application: str | None, group: str | None, limit: int, output: str
) -> None:
    """Past deployments, newest first. --output json prints a list of deployment documents
    without their targets; off a terminal, one whole line per deployment."""
    documents = [
        deployment.to_document(with_targets=False)
        for deployment in api.history(application, group, limit, settings=ctx.settings())
    ]
    if output == "json":
        click.echo(json.dumps(documents, indent=2))
        return
    if not ctx.tables:
        for document in documents:
            click.echo(history_line(document))
        return
    table = Table(title=f"{len(documents)} deployment(s)")
    for column in (
        "deployment",
        "application/group",
        "status",
        "hosts ok/failed/skipped",
        "revision",
        "created",
        "error",
    ):
        table.add_column(column, overflow="fold")
    for document in documents:
        overview = document["deploymentOverview"]
        error = document.get("errorInformation") or {}
        table.add_row(
            Text(document["deploymentId"]),
            Text(f"{document['applicationName']}/{document['deploymentGroupName']}"),
            styled(document["status"]),
            "/".join(str(overview[s]) for s in (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)),
            document["revision"]["sha256"][:12],
            document["createTime"] or "",
            Text(error.get("code") or ""),
        )
    ctx.out.print(table)


@click.command()
@click.argument("deployment_id")
@click.option("--host", help="Only this host.")
@click.option("--event", help="Only this lifecycle event (for example ValidateService).")
@OUTPUT
@pass_context
def logs(
    ctx: CliContext, deployment_id: str, host: str | None, event: str | None, output: str
) -> None:
    """The output of a deployment's lifecycle events (hooks, download, install).

    The history keeps the last 128 KiB of each; where more was printed, a first line says so and
    where the host logged all of a hook's output."""
    with usage_errors():
        rows = api.logs(deployment_id, host, event, settings=ctx.settings())
    if output == "json":
        click.echo(
            json.dumps(
                [{"host": h, "lifecycleEventName": e, "output": o} for h, e, o in rows], indent=2
            )
        )
        return
    for row_host, row_event, text in rows:
        click.echo(f"==> {row_host} {row_event} <==")
        click.echo(text, nl=not text.endswith("\n"))
