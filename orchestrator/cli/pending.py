"""Commands whose interface is fixed (DESIGN §3) but which a later release fills in.

Each accepts its documented options, so scripts can be written against them now, and exits 1
with "not implemented yet".
"""

from __future__ import annotations

from typing import Any

import click

from orchestrator.errors import NotImplementedYet


def _not_yet(name: str) -> None:
    raise NotImplementedYet(f"'{name}' is not implemented yet")


@click.command()
@click.option("-a", "--application", "application", required=True, help="Application name.")
@click.option("-g", "--group", "group", required=True, help="Deployment group.")
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


COMMANDS = (rollback, stop)
