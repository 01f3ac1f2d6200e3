"""The ``orchestrator`` command: global options, error reporting and exit codes."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.context import CliContext
from orchestrator.cli.exit_codes import EXIT_CODE_HELP, ExitCode
from orchestrator.errors import (
    ConfigError,
    LabError,
    LockHeld,
    NotImplementedYet,
    OrchestratorError,
)

# Each command's module is imported when the command runs (or `--help` lists it): `status`,
# `history` and `logs` start in about 0.33 s instead of 0.65-0.81 s, needing neither pydantic nor
# the models, the engine or asyncssh.
COMMANDS = {
    "validate": "orchestrator.cli.inspect",
    "hosts": "orchestrator.cli.inspect",
    "plan": "orchestrator.cli.inspect",
    "rollout": "orchestrator.cli.deploy",
    "rollback": "orchestrator.cli.deploy",
    "sync": "orchestrator.cli.deploy",
    "stop": "orchestrator.cli.control",
    "lock": "orchestrator.cli.control",
    "status": "orchestrator.cli.records",
    "history": "orchestrator.cli.records",
    "logs": "orchestrator.cli.records",
    "lab": "orchestrator.cli.lab",
}


class _Cli(click.Group):
    """Loads each command's module when needed; turns our errors into their documented exit
    codes, with a message on stderr."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(module), cmd_name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{cmd_name} is not a click command")
        return command

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
        except (LabError, NotImplementedYet) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.INTERNAL_ERROR)
        except OrchestratorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ExitCode.FAILED)


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
    help="Deployment history store (env ORCHESTRATOR_STATE); default: a SQLite file in "
    "the user state dir.",
)
@click.version_option(package_name="orchestrator")
@click.pass_context
def cli(ctx: click.Context, inventory: Path | None, state: str | None) -> None:
    """Deploy revisions to fleets over plain SSH, with AWS CodeDeploy's semantics.

    Progress and messages go to stderr; data (tables, JSON) to stdout.
    """
    ctx.obj = CliContext(
        inventory_path=inventory or Path("inventory.yaml"),
        inventory_explicit=inventory is not None,
        state=state,
    )


def main() -> None:
    cli(prog_name="orchestrator")
