"""The ``orchestrator`` command: global options, error reporting and exit codes."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.context import CliContext
from orchestrator.cli.exit_codes import EXIT_CODE_HELP, ExitCode
from orchestrator.errors import (
    BundleStoreError,
    ConfigError,
    LabError,
    LockHeld,
    NotImplementedYet,
    OrchestratorError,
    StoreError,
    TooManyFiles,
)

# Each command: the module that defines it, imported when the command runs, and the first
# sentence of its help, which `--help` lists without importing any command module (a unit test
# keeps the two in step). `status`, `history` and `logs` start in about 0.33 s instead of
# 0.65-0.81 s, needing neither pydantic nor the models, the engine or asyncssh.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "orchestrator.cli.inspect",
        "Check the inventory and, with -r, a revision and its appspec.",
    ),
    "hosts": (
        "orchestrator.cli.inspect",
        "List the hosts a deployment group selects, in deployment order.",
    ),
    "plan": (
        "orchestrator.cli.inspect",
        "Dry run: the hosts, their order, the concurrency and what success needs.",
    ),
    "rollout": (
        "orchestrator.cli.deploy",
        "Deploy a revision to a deployment group over SSH (-a, -g and -r are required).",
    ),
    "rollback": (
        "orchestrator.cli.deploy",
        "Redeploy the group's last successful revision (or the one of --to) to all its hosts.",
    ),
    "sync": (
        "orchestrator.cli.deploy",
        "Deploy the group's last successful revision to the hosts that do not have it.",
    ),
    "stop": (
        "orchestrator.cli.control",
        "Ask a running deployment (run on this machine, or anywhere with a PostgreSQL store) "
        "to stop.",
    ),
    "lock": (
        "orchestrator.cli.control",
        "The deployment group's locks: one on this machine, one on every host.",
    ),
    "status": (
        "orchestrator.cli.records",
        "One deployment, the latest if DEPLOYMENT_ID is omitted: per host, per lifecycle event, "
        "status, times and diagnostics.",
    ),
    "history": ("orchestrator.cli.records", "Past deployments, newest first."),
    "state": (
        "orchestrator.cli.state_cmd",
        "The history store: upgrade its schema, copy a history into another store.",
    ),
    "logs": (
        "orchestrator.cli.records",
        "The output of a deployment's lifecycle events (hooks, download, install).",
    ),
    "lab": (
        "orchestrator.cli.lab",
        "A local fleet of real OpenSSH sshd hosts on loopback addresses (127.0.0.0/8).",
    ),
}


class _Cli(click.Group):
    """Loads each command's module when needed; turns our errors into their documented exit
    codes, with a message on stderr."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), cmd_name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{cmd_name} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click writes it, from the summaries instead of the commands."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        # A bare Command shortens its help as click does for real ones, through public API only
        # (click 8.5 deprecated the helper it uses).
        rows = [
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, summary) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            ctx.exit(ExitCode.INVALID_INPUT)
        except LockHeld as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.LOCKED)
        except (StoreError, BundleStoreError, TooManyFiles) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.LOCAL_FAULT)
        except (LabError, NotImplementedYet) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.INTERNAL_ERROR)
        except OrchestratorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.FAILED)


def _checked_state(value: str | None) -> str | None:
    """``--state`` read once up front: a form no command could use is a usage error (exit 2)."""
    from orchestrator.state.location import state_location  # noqa: PLC0415 - deferred

    if value:
        try:
            state_location(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--state") from None
    return value


@click.group(
    cls=_Cli, epilog=EXIT_CODE_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    envvar="ORCHESTRATOR_INVENTORY",
    default=None,
    show_default="./inventory.yaml",
    help="Inventory file (env ORCHESTRATOR_INVENTORY).",
)
@click.option(
    "--state",
    envvar="ORCHESTRATOR_STATE",
    metavar="URL",
    callback=lambda _ctx, _param, value: _checked_state(value),
    help="Deployment history store (env ORCHESTRATOR_STATE); default: a SQLite file in "
    "the user state dir.",
)
@click.option(
    "--max-handshakes",
    type=click.IntRange(min=1),
    envvar="ORCHESTRATOR_MAX_HANDSHAKES",
    metavar="N",
    help="SSH handshakes in flight at once, for every command that connects (env "
    "ORCHESTRATOR_MAX_HANDSHAKES; default 32): more for fleets far away, whose handshakes wait "
    "on round trips.",
)
@click.version_option(package_name="orchestrator")
@click.pass_context
def cli(
    ctx: click.Context, inventory: Path | None, state: str | None, max_handshakes: int | None
) -> None:
    """Deploy revisions to fleets over plain SSH, with AWS CodeDeploy's semantics.

    Progress and messages go to stderr; data (tables, JSON) to stdout.
    """
    ctx.obj = CliContext(
        inventory_path=inventory or Path("inventory.yaml"),
        inventory_explicit=inventory is not None,
        state=state,
        max_handshakes=max_handshakes,
    )


def main() -> None:
    cli(prog_name="orchestrator")
