"""Commands whose interface is fixed (DESIGN §3) but which later releases fill in.

Each accepts its documented options, so scripts can be written against them now, and exits 1
with "not implemented yet".
"""

from __future__ import annotations

from typing import Any

import click

from orchestrator.errors import NotImplementedYet

APP = click.option("-a", "--application", "application", required=True, help="Application name.")
GROUP = click.option("-g", "--group", "group", required=True, help="Deployment group.")
OUTPUT = click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    help="text for people; json for scripts.",
)


def _not_yet(name: str) -> None:
    raise NotImplementedYet(f"'{name}' is not implemented yet")


@click.command()
@APP
@GROUP
@click.option(
    "-r", "--revision", required=True, help="Directory, .tar, .tar.gz, .zip or git:REPO@REF."
)
@click.option("--deployment-config", metavar="NAME", help="Override the group's config.")
@click.option("--description", help="Free text kept with the deployment.")
@click.option(
    "--file-exists-behavior",
    type=click.Choice(["DISALLOW", "OVERWRITE", "RETAIN"]),
    help="What to do with files that exist where the revision installs.",
)
@click.option(
    "--ignore-application-stop-failures",
    is_flag=True,
    help="Go on when the previous revision's ApplicationStop fails.",
)
@click.option(
    "--auto-rollback/--no-auto-rollback",
    default=None,
    help="Override the group's automatic rollback setting.",
)
@click.option(
    "--update-outdated-only", is_flag=True, help="Deploy only to hosts without this revision."
)
@click.option(
    "--lock-wait", type=float, metavar="SECONDS", help="Wait this long for the group's lock."
)
@click.option(
    "--events", type=click.Path(), metavar="FILE", help="Also write every event as NDJSON."
)
@OUTPUT
def rollout(**_: Any) -> None:
    """Deploy a revision to a deployment group (not implemented yet)."""
    _not_yet("rollout")


@click.command()
@click.argument("deployment_id", required=False)
@OUTPUT
def status(**_: Any) -> None:
    """Show one deployment, the latest if no id is given (not implemented yet)."""
    _not_yet("status")


@click.command()
@click.option("-a", "--application", help="Only this application.")
@click.option("-g", "--group", help="Only this deployment group.")
@click.option("--limit", type=int, default=20, show_default=True, help="How many to list.")
@OUTPUT
def history(**_: Any) -> None:
    """List past deployments (not implemented yet)."""
    _not_yet("history")


@click.command()
@APP
@GROUP
@click.option("--to", metavar="DEPLOYMENT_ID", help="Redeploy this deployment's revision.")
def rollback(**_: Any) -> None:
    """Redeploy the last successful revision (not implemented yet)."""
    _not_yet("rollback")


@click.command()
@click.argument("deployment_id")
@click.option("--rollback", is_flag=True, help="Roll back the hosts the deployment updated.")
def stop(**_: Any) -> None:
    """Ask a running deployment to stop (not implemented yet)."""
    _not_yet("stop")


@click.command()
@click.argument("deployment_id")
@click.option("--host", help="Only this host.")
@click.option("--event", help="Only this lifecycle event.")
def logs(**_: Any) -> None:
    """Full hook output of a deployment (not implemented yet)."""
    _not_yet("logs")


COMMANDS = (rollout, status, history, rollback, stop, logs)
