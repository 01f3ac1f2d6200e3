"""Commands that look without deploying: ``validate``, ``hosts`` and ``plan``."""

from __future__ import annotations

import json
from typing import Any, assert_never

import click
from rich.markup import escape
from rich.table import Table

from orchestrator.api import selected_hosts
from orchestrator.api.hosts import HostCheck, check_hosts
from orchestrator.cli.context import CliContext, pass_context
from orchestrator.cli.exit_codes import ExitCode
from orchestrator.cli.options import APP, DEPLOYMENT_CONFIG, GROUP, OUTPUT, REVISION
from orchestrator.engine.steps import (
    AllowTraffic,
    BlockTraffic,
    DownloadBundle,
    Hooks,
    Install,
    PreviousHooks,
    build_steps,
    unused_traffic_hooks,
)
from orchestrator.models.deployment_config import PREDEFINED, DeploymentConfig
from orchestrator.models.groups import DeploymentGroup
from orchestrator.models.inventory import Inventory
from orchestrator.planning import Simulation, TargetInfo, simulate
from orchestrator.revision import Revision
from orchestrator.templates import DeploymentContext, GroupContext, rendered_archives


@click.command()
@click.option(
    "-r",
    "--revision",
    "revision_spec",
    metavar="REVISION",
    help="Also check this revision: a directory, .tar, .tar.gz, .zip or git:REPO@REF.",
)
@click.option(
    "-a",
    "--application",
    "application",
    help="Render the revision's templates for this application's groups only (default: all).",
)
@click.option("-g", "--group", "group", help="With -a: render them for this deployment group only.")
@pass_context
def validate(
    ctx: CliContext, revision_spec: str | None, application: str | None, group: str | None
) -> None:
    """Check the inventory and, with -r, a revision and its appspec. Contacts no host.

    Every problem is reported with its file, line and key path; the exit code is 3 if any.
    The inventory is checked when it exists or -i/--inventory names it.
    """
    checked = False
    if ctx.inventory_explicit or ctx.inventory_path.exists() or revision_spec is None:
        inventory = ctx.inventory()
        model = inventory.model
        groups = sum(len(app.deployment_groups) for app in model.applications.values())
        ctx.err.print(
            f"[green]ok[/] {escape(inventory.file)}: {len(model.hosts)} hosts, "
            f"{len(model.applications)} applications, {groups} deployment groups"
        )
        checked = True
    if revision_spec is not None:
        revision = ctx.revision(revision_spec)
        ctx.err.print(
            f"[green]ok[/] {escape(revision_spec)}: {revision.kind} revision, "
            f"{len(revision.entries)} entries, sha256 {revision.sha256}"
        )
        for warning in unused_traffic_hooks(revision.appspec, None):
            ctx.err.print(f"warning: {warning}", markup=False, highlight=False)
        if revision.appspec.model.templates and (
            ctx.inventory_explicit or ctx.inventory_path.exists()
        ):
            inventory = ctx.inventory()
            every_group = [
                (app_name, group_name)
                for app_name, app in inventory.model.applications.items()
                for group_name in app.deployment_groups
                if application in (None, app_name) and group in (None, group_name)
            ]
            if application is not None and group is not None:
                inventory.group(application, group)  # an unknown one is an error, not nothing
            rendered = _render_templates(inventory, revision, every_group)
            ctx.err.print(
                f"[green]ok[/] {len(revision.appspec.model.templates)} template(s) rendered "
                f"for {rendered} host(s) of {len(every_group)} deployment group(s)"
            )
        checked = True
    if not checked:
        raise click.UsageError("nothing to validate")


@click.command()
@APP
@GROUP
@click.option("--check", is_flag=True, help="Connect to every host over SSH and run 'echo ok'.")
@OUTPUT
@pass_context
def hosts(ctx: CliContext, application: str, group: str, check: bool, output: str) -> None:
    """List the hosts a deployment group selects, in deployment order.

    With --check, connect to each (checking host keys as the inventory says) and report which
    are reachable; the exit code is 5 if any is not.
    """
    inventory = ctx.inventory()
    selected = selected_hosts(inventory, application, group)
    checks = (
        check_hosts(inventory, application, group, ctx.settings())
        if check
        else [HostCheck(h, None, 0.0) for h in selected]
    )
    if output == "json":
        ctx.out.print_json(
            json.dumps(
                [
                    {
                        "host": c.host.name,
                        "address": c.host.address,
                        "port": c.host.port,
                        "zone": c.host.zone,
                        "tags": c.host.tags,
                        **({"reachable": c.error is None, "error": c.error} if check else {}),
                    }
                    for c in checks
                ]
            )
        )
    else:
        table = Table(title=f"{application}/{group}: {len(selected)} hosts")
        for column in ("host", "address", "zone", "tags", *(("reachable",) if check else ())):
            table.add_column(column)
        for c in checks:
            tags = ", ".join(f"{k}={v}" for k, v in sorted(c.host.tags.items()))
            row = [
                escape(text) for text in (c.host.name, c.host.destination, c.host.zone or "-", tags)
            ]
            if check:
                row.append(
                    f"[green]yes[/] ({c.seconds * 1000:.0f} ms)"
                    if c.error is None
                    else f"[red]no[/]: {escape(c.error)}"
                )
            table.add_row(*row)
        ctx.out.print(table)
    if check:
        reachable = sum(c.error is None for c in checks)
        ctx.err.print(f"{reachable} of {len(checks)} hosts reachable")
        if reachable < len(checks):
            raise click.exceptions.Exit(ExitCode.FAILED)


PLANNED_DEPLOYMENT_ID = "d-PLANNED"  # what {{ deployment.id }} renders as before one exists


def _render_templates(
    inventory: Inventory, revision: Revision, groups: list[tuple[str, str]]
) -> int:
    """Render the revision's templates for every host of ``groups`` as a deployment would
    (``TemplateRenderError``, exit 3, names the template, its line and the host); how many
    hosts were rendered."""
    count = 0
    for application, group in groups:
        hosts = selected_hosts(inventory, application, group)
        rendered_archives(
            revision,
            hosts,
            GroupContext(application, group, inventory.group_id(application, group)),
            DeploymentContext(PLANNED_DEPLOYMENT_ID, revision.sha256, "plan"),
        )
        count += len(hosts)
    return count


def _lifecycle(revision: Revision, group: DeploymentGroup) -> list[dict[str, Any]]:
    events = []
    for step in build_steps(revision.appspec, group):
        match step:
            case PreviousHooks():
                source = "the last successful install's scripts (none on a first deployment)"
            case DownloadBundle() | Install():
                source = "performed by orchestrator"
            case BlockTraffic() | AllowTraffic():
                kind = group.load_balancer.type if group.load_balancer else "-"
                source = f"the load balancer ({kind})"
            case Hooks():
                scripts = [s.location for s in step.scripts]
                source = ", ".join(scripts) if scripts else "no scripts (no-op)"
            case _:
                assert_never(step)
        events.append({"event": step.event, "runs": source})
    return events


def _simulation_json(config: DeploymentConfig, sim: Simulation) -> dict[str, Any]:
    return {
        "deploymentConfig": config.name,
        "description": config.describe(),
        "minimumHealthyHosts": sim.minimum,
        "maxConcurrency": sim.max_concurrency,
        "successNeeds": sim.success_needs,
        "order": sim.order,
        "steps": sim.steps,
        "zoneBakes": [{"zone": z, "seconds": s} for z, s in sim.bakes],
        "valid": sim.outcome.succeeded,
        "errorCode": sim.outcome.error_code,
    }


@click.command()
@APP
@GROUP
@REVISION
@DEPLOYMENT_CONFIG
@OUTPUT
@pass_context
def plan(
    ctx: CliContext,
    application: str,
    group: str,
    revision_spec: str,
    config_name: str | None,
    output: str,
) -> None:
    """Dry run: the hosts, their order, the concurrency and what success needs.

    Validates the revision and contacts no host. The steps shown assume every host succeeds;
    the table compares every predefined config (and the inventory's own) on the same hosts.
    Exit code 5 when the deployment could not succeed (no hosts, or a minimum that cannot hold).
    """
    inventory = ctx.inventory()
    hosts_ = selected_hosts(inventory, application, group)
    revision = ctx.revision(revision_spec)
    targets = [TargetInfo(h.name, zone=h.zone) for h in hosts_]
    config = inventory.deployment_config(inventory.config_name_for(application, group, config_name))
    chosen = simulate(config, targets)
    others = [
        *PREDEFINED.values(),
        *(inventory.deployment_config(n) for n in sorted(inventory.model.deployment_configs)),
    ]
    compared = [(c, simulate(c, targets)) for c in others]
    _render_templates(inventory, revision, [(application, group)])
    for warning in unused_traffic_hooks(revision.appspec, inventory.group(application, group)):
        ctx.err.print(f"warning: {warning}", markup=False, highlight=False)
    if output == "json":
        ctx.out.print_json(
            json.dumps(
                {
                    "applicationName": application,
                    "deploymentGroupName": group,
                    "deploymentGroupId": inventory.group_id(application, group),
                    "revision": {
                        "source": revision_spec,
                        "sha256": revision.sha256,
                        "size": revision.size,
                        "entries": len(revision.entries),
                    },
                    "hosts": [h.name for h in hosts_],
                    "lifecycle": _lifecycle(revision, inventory.group(application, group)),
                    "plan": _simulation_json(config, chosen),
                    "configs": [_simulation_json(c, s) for c, s in compared],
                }
            )
        )
    else:
        _render_plan(ctx, application, group, revision, config, chosen, compared)
    if not chosen.outcome.succeeded:
        ctx.err.print(
            "[red]this deployment cannot succeed[/]: "
            + escape(f"{chosen.outcome.error_code}: {chosen.outcome.message}")
        )
        raise click.exceptions.Exit(ExitCode.FAILED)


def _render_plan(
    ctx: CliContext,
    application: str,
    group: str,
    revision: Revision,
    config: DeploymentConfig,
    sim: Simulation,
    compared: list[tuple[DeploymentConfig, Simulation]],
) -> None:
    out = ctx.out
    out.print(
        "[bold]Plan[/] "
        + escape(
            f"{application}/{group}: revision {revision.source} (sha256 {revision.sha256[:12]}, "
            f"{len(revision.entries)} entries, {revision.size} bytes)"
        )
    )
    out.print(f"Deployment config: [bold]{config.name}[/] ({config.describe()})")
    out.print(escape(f"Hosts in order ({len(sim.order)}): {', '.join(sim.order) or 'none'}"))
    out.print(
        f"Keeps at least {sim.minimum} healthy; at most {sim.max_concurrency} at a time; "
        f"success needs {sim.success_needs}."
    )
    for number, step in enumerate(sim.steps, 1):
        out.print(escape(f"  step {number}: {', '.join(step)}"))
    for zone, seconds in sim.bakes:
        out.print(escape(f"  after zone {zone}: monitor {seconds}s before the next zone"))
    events = Table(title="Lifecycle events on each host")
    events.add_column("event")
    events.add_column("runs")
    for row in _lifecycle(revision, ctx.inventory().group(application, group)):
        events.add_row(row["event"], escape(row["runs"]))
    out.print(events)
    table = Table(title=f"Deployment configs on these {len(sim.order)} hosts")
    table.add_column("config", no_wrap=True)
    for column in ("keeps healthy", "at a time", "success needs"):
        table.add_column(column)
    for other, result in compared:
        needs = (
            result.success_needs
            if result.outcome.succeeded
            else f"[red]{result.outcome.error_code}[/]"
        )
        table.add_row(other.name, str(result.minimum), str(result.max_concurrency), needs)
    out.print(table)
