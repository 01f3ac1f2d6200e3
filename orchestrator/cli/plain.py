"""Complete plain lines, for pipes, cron mail and CI logs, and a rollout's short summary.

Off a terminal a table wraps at 80 columns and cuts what it holds (a deployment id in two): every
line here is whole, starts with what it is about (a deployment id, a host) so that ``grep`` finds
it, and holds no markup and no escape sequence.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.results import Status

SLOWEST_SHOWN = 3
_COUNTED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)


# C0 and C1 controls but newline and tab, DEL, and the bidirectional overrides: what a host's
# output can hold (a hook's stderr, a load balancer command's) that a terminal would act on
# (colours, a title, OSC 52 writing the clipboard) or that would reorder what the reader sees.
_UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with what a terminal would act on written as a visible ``\\xNN`` escape."""
    return _UNSEEN.sub(
        lambda match: (
            f"\\x{ord(match.group()):02x}"
            if ord(match.group()) < 0x100
            else f"\\u{ord(match.group()):04x}"
        ),
        text,
    )


def took(event: dict[str, Any]) -> float | None:
    """Seconds a lifecycle event (a document's) took, if it ran."""
    if not event.get("startTime") or not event.get("endTime"):
        return None
    start = datetime.fromisoformat(event["startTime"])
    return (datetime.fromisoformat(event["endTime"]) - start).total_seconds()


def event_detail(event: dict[str, Any], *, one_line: bool = True) -> str:
    """A lifecycle event's diagnostics (unless Success) and warnings (on one line)."""
    diagnostics = event.get("diagnostics") or {}
    detail = ""
    if diagnostics and diagnostics.get("errorCode") != LifecycleErrorCode.SUCCESS:
        detail = f"{diagnostics.get('errorCode')}: {diagnostics.get('message')}"
    if event.get("warnings"):
        detail = "; ".join([detail, *event["warnings"]]).strip("; ")
    return visible(" ".join(detail.split()) if one_line else detail)


def deployment_header(document: dict[str, Any]) -> list[str]:
    """What ``status`` says of the deployment before its hosts (plain text, no markup)."""
    error = document.get("errorInformation") or {}
    revision = document["revision"]
    lines = [
        f"{document['deploymentId']} {document['applicationName']}/"
        f"{document['deploymentGroupName']} {document['status']}"
        + (visible(f" {error.get('code')}: {error.get('message')}") if error else ""),
        f"revision {revision.get('source')} sha256 {revision.get('sha256', '')[:12]}"
        f"  config {document.get('deploymentConfigName')}  created {document.get('createTime')}"
        f"  completed {document.get('completeTime') or '-'}",
    ]
    if document.get("interrupted"):
        lines.append(
            "interrupted: the orchestrator process that ran it is gone; complete it with "
            f"'orchestrator rollout --resume {document['deploymentId']}' "
            f"(or record it as stopped with 'orchestrator stop {document['deploymentId']}')"
        )
    if document.get("rollbackInfo"):
        lines.append(f"rollback: {json.dumps(document['rollbackInfo'])}")
    return lines


def deployment_lines(document: dict[str, Any]) -> list[str]:
    """``status`` off a terminal: the header, then per host a line and a line per event."""
    lines = deployment_header(document)
    for target in document.get("targets", []):
        host = target["host"]
        lines.append(f"{host} {target['status']}")
        for event in target["lifecycleEvents"]:
            seconds = took(event)
            line = f"{host} {event['lifecycleEventName']} {event['status']}"
            if seconds is not None:
                line += f" {seconds:.1f}s"
            detail = event_detail(event)
            lines.append(f"{line}: {detail}" if detail else line)
    return lines


def history_line(document: dict[str, Any]) -> str:
    """One deployment of ``history`` off a terminal, every field whole."""
    overview = document["deploymentOverview"]
    error = document.get("errorInformation") or {}
    counts = "/".join(str(overview[s]) for s in _COUNTED)
    line = (
        f"{document['deploymentId']}  {document['applicationName']}/"
        f"{document['deploymentGroupName']}  {document['status']}  "
        f"ok/failed/skipped {counts}  revision {document['revision']['sha256'][:12]}  "
        f"created {document['createTime'] or '-'}"
    )
    return f"{line}  error {error['code']}" if error.get("code") else line


def host_seconds(target: dict[str, Any]) -> float:
    """How long a host took: from its first event's start to its last event's end."""
    starts = [e["startTime"] for e in target["lifecycleEvents"] if e.get("startTime")]
    ends = [e["endTime"] for e in target["lifecycleEvents"] if e.get("endTime")]
    if not starts or not ends:
        return 0.0
    return (datetime.fromisoformat(max(ends)) - datetime.fromisoformat(min(starts))).total_seconds()


def deployment_seconds(document: dict[str, Any]) -> float | None:
    if not document.get("createTime") or not document.get("completeTime"):
        return None
    start = datetime.fromisoformat(document["createTime"])
    return (datetime.fromisoformat(document["completeTime"]) - start).total_seconds()


def summary(document: dict[str, Any]) -> list[str]:
    """A rollout's result in two lines, whatever the number of hosts: counts, duration and the
    slowest hosts (with their slowest event), instead of a row per host and event."""
    overview = document["deploymentOverview"]
    targets = document.get("targets", [])
    counts = ", ".join(f"{n} {status.lower()}" for status, n in overview.items() if n)
    seconds = deployment_seconds(document)
    line = (
        f"{document['deploymentId']} {document['applicationName']}/"
        f"{document['deploymentGroupName']} {document['status']}: {len(targets)} hosts"
        + (f" ({counts})" if counts else "")
        + (f" in {seconds:.1f}s" if seconds is not None else "")
        + f", {document['deploymentConfigName']}"
    )
    error = document.get("errorInformation") or {}
    if error:
        line += f" ({error.get('code')}: {error.get('message')})"
    lines = [line]
    slowest = sorted(targets, key=host_seconds, reverse=True)[:SLOWEST_SHOWN]
    if slowest:
        lines.append("slowest: " + ", ".join(_slow_host(target) for target in slowest))
    return lines


def _slow_host(target: dict[str, Any]) -> str:
    timed = [(took(e) or 0.0, e["lifecycleEventName"]) for e in target["lifecycleEvents"]]
    seconds, name = max(timed, default=(0.0, ""))
    text = f"{target['host']} {host_seconds(target):.1f}s"
    return f"{text} ({name} {seconds:.1f}s)" if name else text


def error_lines(document: dict[str, Any]) -> list[str]:
    """``-q``: only what went wrong, each line starting with ``error:``."""
    lines = []
    if document["status"] != Status.SUCCEEDED:
        error = document.get("errorInformation") or {}
        reason = f": {error.get('code')}: {error.get('message')}" if error else ""
        lines.append(f"error: deployment {document['deploymentId']} {document['status']}{reason}")
    for target in document.get("targets", []):
        if target["status"] != Status.FAILED:
            continue
        failed = [e for e in target["lifecycleEvents"] if e["status"] == Status.FAILED]
        where = f" {failed[0]['lifecycleEventName']}" if failed else ""
        detail = event_detail(failed[0]) if failed else ""
        lines.append(f"error: {target['host']}{where} failed" + (f": {detail}" if detail else ""))
    return lines
