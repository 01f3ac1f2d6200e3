"""``stop`` and ``lock``: acting on deployments that run, and on the group locks."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time

import click
from rich.markup import escape
from rich.table import Table

from orchestrator import api
from orchestrator.api import selected_hosts
from orchestrator.cli.context import CliContext, pass_context, ssh_transport, usage_errors
from orchestrator.cli.exit_codes import ExitCode
from orchestrator.cli.options import APP, GROUP
from orchestrator.engine.remote import LockMode, LockReply, RemoteHost
from orchestrator.errors import HostError
from orchestrator.hostproto.replies import LockState
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Status
from orchestrator.state.base import GroupLock, Store, open_store

STOP_POLL = 0.2
KILL_WAIT = 10.0  # for the kernel to end a process sent SIGKILL
LIVE_SCAN = 100  # the group's most recent deployments looked at for one still running


@click.command()
@click.argument("deployment_id")
@click.option("--rollback", is_flag=True, help="Then roll back the hosts the deployment updated.")
@click.option(
    "--force",
    is_flag=True,
    help="Terminate running hooks (SIGTERM, then SIGKILL after the rollout's grace) "
    "instead of letting them finish.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=600,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the deployment to stop (0: do not wait).",
)
@pass_context
def stop(
    ctx: CliContext, deployment_id: str, rollback: bool, force: bool, wait_seconds: float
) -> None:
    """Ask a running deployment (run on this machine, or anywhere with a PostgreSQL store) to stop.

    No new lifecycle event starts; running hooks finish (or, with --force, are terminated). The
    deployment is recorded as Stopped (MANUAL_STOP) and its rollout exits 6. An interrupted
    deployment (its process is gone) is recorded as Stopped at once.
    """
    settings = ctx.settings()
    with usage_errors():
        requested = api.request_stop(
            deployment_id, rollback=rollback, force=force, settings=settings
        )
    pid = requested.pid
    if requested.outcome == "interrupted":
        ctx.err.print(
            f"{deployment_id} was interrupted (process {pid} is gone): recorded as Stopped"
        )
        return
    if requested.outcome == "ended":
        ctx.err.print(f"{deployment_id}: its process {pid} has just ended")
        return
    ctx.err.print(f"stop requested for {deployment_id} (process {pid})")
    if not wait_seconds:
        return
    ended = api.wait_stopped(deployment_id, wait_seconds, settings=settings)
    if ended is not None:
        ctx.err.print(f"{deployment_id} {ended}")
    else:
        ctx.err.print(
            f"{deployment_id} is still stopping after {wait_seconds:g}s (hooks finishing)"
        )


@click.group()
def lock() -> None:
    """The deployment group's locks: one on this machine, one on every host."""


async def _host_locks(
    hosts: list[HostSpec], group_id: str, mode: LockMode, ctx: CliContext
) -> list[tuple[str, LockReply | str]]:
    transport = ssh_transport(ctx.max_handshakes, ctx.accept_new_file)()

    async def one(host: HostSpec) -> tuple[str, LockReply | str]:
        try:
            session = await transport.connect(host)
        except HostError as exc:
            return host.name, exc.message
        try:
            return host.name, await RemoteHost(session, host, group_id).lock(mode)
        except HostError as exc:
            return host.name, exc.message
        finally:
            await session.close()

    try:
        return list(await asyncio.gather(*(one(h) for h in hosts)))
    finally:
        await transport.close()


def _show(
    ctx: CliContext,
    local: GroupLock,
    rows: list[tuple[str, LockReply | str]],
    title: str,
    shared: bool = False,
) -> None:
    holder = local.holder()
    here = f"held by {holder.describe()}" if holder is not None and holder.known else "free"
    # A shared store's group lock is every controller's, wherever its holder runs.
    ctx.out.print(escape(f"{'controllers (shared store)' if shared else 'this machine'}: {here}"))
    table = Table(title=title)
    for column in ("host", "lock", "holder", "heartbeat age"):
        table.add_column(column)
    for name, state in rows:
        if isinstance(state, str):
            table.add_row(escape(name), "[red]unreachable[/]", escape(state), "")
        elif state.state == LockState.FAILED:
            error = state.error or ""
            table.add_row(escape(name), "[red]failed[/]", escape(error), "")
        else:
            age = state.heartbeat_age
            table.add_row(
                escape(name),
                escape(state.shown),
                escape(state.holder.describe()) if state.holder.known else "",
                escape(f"{age}s") if age is not None else "",
            )
    ctx.out.print(table)


@lock.command("status")
@APP
@GROUP
@pass_context
def lock_status(ctx: CliContext, application: str, group: str) -> None:
    """Who holds the group's lock, here and on each host, and how fresh its heartbeat is."""
    inventory = ctx.inventory()
    group_id = inventory.group_id(application, group)
    rows = asyncio.run(
        _host_locks(selected_hosts(inventory, application, group), group_id, LockMode.STATUS, ctx)
    )
    with contextlib.closing(open_store(ctx.state, readonly=True)) as store:
        _show(
            ctx,
            store.group_lock(application, group, group_id),
            rows,
            f"{application}/{group} locks",
            shared=store.shared,
        )


@lock.command("release")
@APP
@GROUP
@click.option(
    "--force",
    is_flag=True,
    required=True,
    help="Required: break the locks whoever holds them. Only for a holder that is gone.",
)
@click.option(
    "--kill",
    is_flag=True,
    help="When a deployment of the group runs on this machine, first stop it as `stop --force` "
    "does, SIGKILL its process if it is still there after --wait, then break the locks.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="With --kill: how long the deployment's process has to stop before it gets SIGKILL.",
)
@pass_context
def lock_release(
    ctx: CliContext, application: str, group: str, force: bool, kill: bool, wait_seconds: float
) -> None:
    """Break the group's locks on its hosts (after a controller died and will not resume).

    A deployment of the group that this machine shows as running (it holds the lock here, or
    the history records it in progress under a live process) keeps its locks: the command names
    it and exits 7, unless --kill stops it first. The lock on this machine is released by the
    operating system when its process ends. Exits 5 when a host's lock could not be broken
    (unreachable, or its disk read-only).
    """
    inventory = ctx.inventory()
    group_id = inventory.group_id(application, group)
    store = open_store(ctx.state)
    local = store.group_lock(application, group, group_id)
    try:
        live = _live_deployments(store, local, application, group)
        if live and not kill:
            deployment_id, pid = next(iter(live.items()))
            ctx.err.print(
                escape(
                    f"deployment {deployment_id} of {application}/{group} runs "
                    f"{_where(store, local)} (process {pid}): its locks are left alone. Stop it "
                    f"(orchestrator stop {deployment_id}), or add --kill to stop it and then "
                    "break the locks"
                )
            )
            raise click.exceptions.Exit(ExitCode.LOCKED)
        for deployment_id, pid in live.items():
            _kill(ctx, store, (application, group, deployment_id), pid, wait_seconds)
    finally:
        store.close()
    rows = asyncio.run(
        _host_locks(selected_hosts(inventory, application, group), group_id, LockMode.BREAK, ctx)
    )
    _show(ctx, local, rows, f"{application}/{group} locks broken")
    if any(isinstance(state, str) or state.state == LockState.FAILED for _, state in rows):
        raise click.exceptions.Exit(ExitCode.FAILED)


def _where(store: Store, local: GroupLock) -> str:
    """Where the group lock's holder runs: this machine, or (a shared store) the one it names."""
    holder = local.holder() if store.shared else None
    if holder is None or holder.holder is None:
        return "on this machine"
    machine = holder.holder.rpartition("@")[2]
    return "on this machine" if machine == socket.gethostname() else f"on {machine}"


def _live_deployments(
    store: Store, local: GroupLock, application: str, group: str
) -> dict[str, int]:
    """The group's deployments that this machine shows as running, with their process: the
    holder of the lock here, and those the history records in progress under a live process."""
    live: dict[str, int] = {}
    holder = local.holder()
    if holder is not None:
        live[holder.deployment or "?"] = holder.pid or 0
    for deployment in store.history(application, group, limit=LIVE_SCAN):
        deployment_id = deployment.deployment_id
        if deployment.status != Status.IN_PROGRESS or deployment_id in live:
            continue
        runner = store.runner(deployment_id)
        if runner is not None and runner.runs_here():
            live[deployment_id] = runner.process.pid
    return live


def _kill(
    ctx: CliContext,
    store: Store,
    deployment: tuple[str, str, str],
    pid: int,
    wait_seconds: float,
) -> None:
    """Stop a running deployment (application, group, id) as ``stop --force`` does; SIGKILL its
    process if it is still there after ``wait_seconds`` (in its automatic rollback, say); record
    what was killed as Stopped."""
    application, group, deployment_id = deployment
    runner = store.runner(deployment_id)
    if runner is not None and store.shared and runner.machine != socket.gethostname():
        raise click.UsageError(
            f"deployment {deployment_id} runs on {runner.machine} (process {pid}): --kill "
            f"stops only a process of this machine; stop it from anywhere with "
            f"`orchestrator stop --force {deployment_id}`, then release the locks"
        )
    if runner is None or not runner.runs_here() or runner.process.pid != pid:
        raise click.UsageError(
            f"deployment {deployment_id} holds the group's lock on this machine (process {pid}) "
            f"but the history at {store.location} does not show it running here "
            "(another --state?): stop it where it was started"
        )
    deadline = time.monotonic() + wait_seconds
    with contextlib.suppress(click.UsageError):  # it ended meanwhile
        click.get_current_context().invoke(
            stop, deployment_id=deployment_id, rollback=False, force=True, wait_seconds=wait_seconds
        )
    while runner.runs_here() and time.monotonic() < deadline:
        time.sleep(STOP_POLL)  # the process concludes, releases its locks and exits; bounded
    if runner.runs_here():
        ctx.err.print(f"{deployment_id}: process {pid} still runs after {wait_seconds:g}s: SIGKILL")
        runner.process.send(signal.SIGKILL)
        gone = time.monotonic() + KILL_WAIT
        while runner.runs_here() and time.monotonic() < gone:
            time.sleep(STOP_POLL)  # the kernel reaps it; bounded
        if runner.runs_here():
            # Unkillable for now (uninterruptible I/O): its locks are still its own.
            ctx.err.print(
                f"error: {deployment_id}: process {pid} still runs {KILL_WAIT:g}s after SIGKILL: "
                "its locks are left in place"
            )
            raise click.exceptions.Exit(ExitCode.LOCKED)
    for recorded in store.history(application, group, limit=LIVE_SCAN):
        if recorded.status == Status.IN_PROGRESS and store.runner(recorded.deployment_id) == runner:
            store.mark_stopped(recorded.deployment_id, "killed by orchestrator lock release --kill")
