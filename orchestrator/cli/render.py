"""Showing deployments: a live view on a terminal, plain lines elsewhere, tables, NDJSON."""

from __future__ import annotations

import json
import time
from typing import IO, Any, assert_never

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.cli.plain import event_detail, took, visible
from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
    TargetFinished,
    TargetStarted,
    ZoneBaking,
    event_record,
)
from orchestrator.models.results import Deployment, Status

STATUS_STYLE: dict[str, str] = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "red",
    Status.SKIPPED: "yellow",
    Status.STOPPED: "yellow",
    Status.IN_PROGRESS: "cyan",
    Status.PENDING: "dim",
}
MAX_FAILURES_SHOWN = 8


def styled(status: str | None) -> str:
    status = status or "-"
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


class PlainProgress:
    """One line per thing that happened, for logs, cron and CI (no animation)."""

    label = "the progress lines (stderr)"

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if line is not None:
            # Plain text straight to the console's file: rich's rendering of each line cost more
            # than the rest of the event's handling (measured at 100 hosts).
            self.console.file.write(visible(line) + "\n")
            self.console.file.flush()

    @staticmethod
    def line(event: Event) -> str | None:
        """What an event says on its line, if anything."""
        match event:
            case DeploymentStarted(deployment=deployment):
                return (
                    f"deployment {deployment.deployment_id}: "
                    f"{deployment.application}/{deployment.group}, "
                    f"{len(deployment.targets)} hosts, {deployment.config_name}"
                )
            case HostUnreachable():
                return f"{event.target.host}: {event.message}"
            case LifecycleEventFinished():
                return _event_line(event)
            case TargetFinished():
                return f"{event.target.host}: {event.target.status}"
            case ZoneBaking():
                return f"zone {event.zone} done: monitoring for {event.seconds}s"
            case Notice():
                return f"{event.host}: {event.message}" if event.host else event.message
            case DeploymentFinished():
                return summary_line(event.deployment)
            case TargetStarted() | LifecycleEventStarted():
                return None
            case _:
                assert_never(event)


def _event_line(event: LifecycleEventFinished) -> str:
    lifecycle = event.event
    took = (lifecycle.end_time or 0) - (lifecycle.start_time or 0)
    line = f"{event.target.host}: {lifecycle.name} {lifecycle.status} ({took:.1f}s)"
    if lifecycle.status == Status.FAILED and lifecycle.diagnostics:
        line += f": {lifecycle.diagnostics.error_code}: {lifecycle.diagnostics.message}"
    for warning in lifecycle.warnings:
        line += f"\n{event.target.host}: warning: {warning}"
    return line


class LiveProgress:
    """A live view for a terminal: counts, hosts in flight with their event, failures so far."""

    label = "the progress view (stderr)"

    def __init__(self, console: Console) -> None:
        self.console = console
        self.deployment: Deployment | None = None
        self.current: dict[str, str] = {}
        self.failures: list[str] = []
        self.started = time.monotonic()
        self.live = Live(console=console, refresh_per_second=4, transient=True)

    def __call__(self, event: Event) -> None:
        self.deployment = event.deployment
        match event:
            case DeploymentStarted():
                self.live.start()
            case LifecycleEventStarted():
                self.current[event.target.host] = event.event.name
            case LifecycleEventFinished():
                if event.event.status == Status.FAILED:
                    self._failed(event)
            case HostUnreachable():
                self.failures.append(f"{event.target.host}: {event.message}")
            case Notice():
                where = f"{event.host}: " if event.host else ""
                self.console.print(visible(where + event.message), markup=False, highlight=False)
            case TargetFinished():
                self.current.pop(event.target.host, None)
            case DeploymentFinished():
                self.live.stop()
                line = visible(summary_line(event.deployment))
                self.console.print(line, markup=False, highlight=False)
                return
            case TargetStarted() | ZoneBaking():
                pass
            case _:
                assert_never(event)
        self.live.update(self.render())

    def _failed(self, event: LifecycleEventFinished) -> None:
        diagnostics = event.event.diagnostics
        detail = visible(f"{diagnostics.error_code}: {diagnostics.message}") if diagnostics else ""
        self.failures.append(f"{event.target.host} {event.event.name}: {detail}")
        self.console.print(
            f"[red]{escape(event.target.host)}[/] {event.event.name} failed: {escape(detail)}"
        )

    def render(self) -> Group:
        deployment = self.deployment
        assert deployment is not None
        overview = deployment.overview()
        succeeded, failed = overview[Status.SUCCEEDED], overview[Status.FAILED]
        done = succeeded + failed + overview[Status.SKIPPED]
        header = Text.from_markup(
            f"[bold]{deployment.deployment_id}[/] "
            f"{escape(deployment.application)}/{escape(deployment.group)}  "
            f"{done}/{len(deployment.targets)} done  [green]{succeeded} ok[/]  "
            f"[red]{failed} failed[/]  {time.monotonic() - self.started:.0f}s"
        )
        flight = Table.grid(padding=(0, 2))
        for host, event in list(self.current.items())[:20]:
            flight.add_row(Text(host), Text(event, style="cyan"))
        if len(self.current) > 20:
            flight.add_row(f"... and {len(self.current) - 20} more", "")
        parts: list[Any] = [header, flight]
        parts.extend(Text(f"  {line}", style="red") for line in self.failures[-MAX_FAILURES_SHOWN:])
        return Group(*parts)


class NdjsonSink:
    """``--events FILE``: every event as one JSON line, flushed as it happens."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.label = f"the events file {stream.name}"

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event_record(event)) + "\n")
        self.stream.flush()


def summary_line(deployment: Deployment) -> str:
    overview = deployment.overview()
    counts = ", ".join(f"{count} {status.lower()}" for status, count in overview.items() if count)
    text = f"deployment {deployment.deployment_id} {deployment.status}: {counts}"
    if deployment.error_code:
        text += f" ({deployment.error_code}: {deployment.error_message})"
    return text


def deployment_table(document: dict[str, Any]) -> Group:
    """``status``: the deployment, then per host and per lifecycle event."""
    error = document.get("errorInformation") or {}
    revision = document["revision"]
    name = escape(f"{document['applicationName']}/{document['deploymentGroupName']}")
    lines = [
        f"[bold]{escape(document['deploymentId'])}[/] {name}"
        f"  {styled(document['status'])}"
        + (escape(visible(f"  {error.get('code')}: {error.get('message')}")) if error else ""),
        escape(
            f"revision {revision.get('source')} sha256 {revision.get('sha256', '')[:12]}"
            f"  config {document.get('deploymentConfigName')}  created {document.get('createTime')}"
            f"  completed {document.get('completeTime') or '-'}"
        ),
    ]
    if document.get("interrupted"):
        lines.append(
            "[yellow]interrupted[/]: the orchestrator process that ran it is gone; "
            "complete it with "
            f"'orchestrator rollout --resume {document['deploymentId']}' "
            f"(or record it as stopped with 'orchestrator stop {document['deploymentId']}')"
        )
    if document.get("rollbackInfo"):
        lines.append(escape(f"rollback: {json.dumps(document['rollbackInfo'])}"))
    table = Table()
    for column in ("host", "status", "event", "event status", "took", "diagnostics"):
        table.add_column(column, overflow="fold")
    for target in document.get("targets", []):
        first = True
        for event in target["lifecycleEvents"]:
            seconds = took(event)
            table.add_row(
                Text(target["host"] if first else ""),
                styled(target["status"]) if first else "",
                Text(event["lifecycleEventName"]),
                styled(event["status"]),
                "" if seconds is None else f"{seconds:.1f}s",
                Text(event_detail(event, one_line=False)),
            )
            first = False
    return Group(*(Text.from_markup(line) for line in lines), table)
