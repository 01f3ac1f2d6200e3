"""``orchestrator lab``: a local fleet of real sshd hosts to try orchestrator on."""

from __future__ import annotations

from pathlib import Path

import click
import platformdirs
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.context import APP_NAME, CliContext, pass_context
from orchestrator.lab import toolbox
from orchestrator.lab.fleet import DEFAULT_BASE_ADDRESS, Lab


def _default_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "lab"


DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=_default_dir,
    show_default="the user state dir's lab/",
    help="Where the lab keeps its keys, host directories, inventory and state.",
)


@click.group()
def lab() -> None:
    """A local fleet of real OpenSSH sshd hosts on loopback addresses (127.0.0.0/8).

    As root, each host gets its own mount namespace with private /srv, /opt and /var/lib, so
    deployments to different hosts do not see each other. Without root, hosts share the
    filesystem and only their deployment roots differ. Needs sshd; installs nothing.
    """


@lab.command()
@click.option(
    "--hosts",
    "count",
    type=click.IntRange(1, 2000),
    default=5,
    show_default=True,
    help="How many hosts to start (named web-1 .. web-N).",
)
@DIR
@click.option(
    "--base-address",
    default=DEFAULT_BASE_ADDRESS,
    show_default=True,
    help="Loopback address the host addresses count up from (inside 127.0.0.0/8).",
)
@click.option(
    "--busybox",
    is_flag=True,
    help="Hosts whose sessions have only busybox's applets on their PATH, busybox's sh reading "
    "their commands (as on Alpine). Needs busybox.",
)
@pass_context
def up(ctx: CliContext, count: int, directory: Path, base_address: str, busybox: bool) -> None:
    """Start the fleet and write inventory.yaml, known_hosts and ssh_config into the lab dir."""
    session_path = toolbox.busybox(directory / "busybox") if busybox else None
    fleet = Lab.up(directory, count, base_address=base_address, session_path=session_path)
    mode = "private mount namespaces" if fleet.namespaced else "shared filesystem (not root)"
    ctx.err.print(f"[green]started[/] {count} hosts in {escape(str(fleet.directory))} ({mode})")
    ctx.out.print(str(fleet.inventory_path), markup=False, highlight=False)
    inventory = fleet.inventory_path
    ctx.err.print(
        "next:\n"
        f"  orchestrator -i {inventory} hosts -a hello -g web --check\n"
        f"  orchestrator -i {inventory} plan -a hello -g web -r playbooks/hello-web\n"
        f"  orchestrator -i {inventory} rollout -a hello -g web -r playbooks/hello-web",
        markup=False,
    )


@lab.command()
@DIR
@pass_context
def down(ctx: CliContext, directory: Path) -> None:
    """Stop exactly the processes the lab started (sshd, its sessions, what hooks left running)."""
    stopped = Lab.load(directory).down()
    ctx.err.print(f"stopped {stopped} processes")


@lab.command()
@DIR
@pass_context
def status(ctx: CliContext, directory: Path) -> None:
    """List the lab's hosts and whether their sshd runs."""
    fleet = Lab.load(directory)
    table = Table(title=escape(f"lab in {fleet.directory}"))
    for column in ("host", "address", "sshd pid", "running"):
        table.add_column(column)
    for host, alive in fleet.status():
        table.add_row(
            host.name,
            f"{host.address}:{host.port}",
            str(host.pid),
            "[green]yes[/]" if alive else "[red]no[/]",
        )
    ctx.out.print(table)
