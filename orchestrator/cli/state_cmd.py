"""``state migrate`` and ``state copy``: the history store itself (``state/migrate.py``,
``state/copy.py``). Locations are ``--state`` forms; URLs are shown without their passwords."""

from __future__ import annotations

import click

from orchestrator import api
from orchestrator.cli.context import CliContext, pass_context, usage_errors
from orchestrator.state.location import state_location


def _checked(value: str | None, hint: str) -> str | None:
    if value:
        try:
            state_location(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from None
    return value


@click.group()
def state() -> None:
    """The history store: upgrade its schema, copy a history into another store."""


@state.command("migrate")
@click.option(
    "--state",
    "url",
    metavar="URL",
    callback=lambda _ctx, _param, value: _checked(value, "--state"),
    help="The store to upgrade (default: the global --state, or ORCHESTRATOR_STATE).",
)
@pass_context
def migrate(ctx: CliContext, url: str | None) -> None:
    """Upgrade the store's schema to this orchestrator's (creating it in an empty store).

    Says the version before and after. A store that a newer orchestrator wrote is refused
    (exit 8), as is one that cannot be reached.
    """
    done = api.migrate_state(api.Settings(state=url or ctx.state))
    before = "none" if done.before == 0 else str(done.before)
    change = "already at" if done.before == done.after else f"{before} ->"
    ctx.err.print(f"{done.location}: schema version {change} {done.after}", markup=False)


@state.command("copy")
@click.argument("source", callback=lambda _ctx, _param, value: _checked(value, "SRC"))
@click.argument("destination", callback=lambda _ctx, _param, value: _checked(value, "DST"))
@pass_context
def copy(ctx: CliContext, source: str, destination: str) -> None:
    """Copy every deployment of SOURCE (with its targets, events and logs) into DESTINATION.

    Either is a --state form: a path, sqlite:///file or postgresql://user@host/db. Copying again
    replaces the copies, never duplicates them. A deployment still running in SOURCE is left
    out and named (exit 5); an interrupted one is copied.
    """
    with usage_errors():
        copied = api.copy_state(source, destination)
    ctx.err.print(
        f"copied {copied.deployments} deployment(s) and {copied.events} lifecycle event(s) "
        f"from {copied.source} to {copied.destination}",
        markup=False,
    )
    if copied.running:
        ctx.err.print(
            f"error: not copied, still running: {', '.join(copied.running)} (copy again once "
            "they have ended, or stop them)",
            markup=False,
        )
        raise click.exceptions.Exit(5)
