"""Reports for CI: a JUnit XML file (``--junit``) and GitHub Actions' annotations and step summary.

Both are built from deployment documents (``Deployment.to_document``), the same data as
``--output json``: a host is a test case, its lifecycle events are what it printed, a failed host
is a failure with the failed event's diagnostics and log tail, a host that did not run is skipped.
"""

from __future__ import annotations

import html
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.cli.plain import deployment_seconds, event_detail, host_seconds, took
from orchestrator.models.results import Status

# What XML 1.0 cannot hold (C0 controls but tab and newlines, lone surrogates, U+FFFE/U+FFFF): a
# hook's log tail may print any of them (a terminal escape), and one would make the file unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot hold written as a visible ``\\xNN`` escape."""
    return _NOT_XML.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _failed_event(target: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for e in target["lifecycleEvents"] if e["status"] == Status.FAILED), None)


def _event_lines(target: dict[str, Any]) -> str:
    lines = []
    for event in target["lifecycleEvents"]:
        seconds = took(event)
        line = f"{event['lifecycleEventName']} {event['status']}"
        line += f" {seconds:.1f}s" if seconds is not None else ""
        detail = event_detail(event)
        lines.append(f"{line}: {detail}" if detail else line)
    return "\n".join(lines) + "\n"


def failure_text(target: dict[str, Any]) -> tuple[str, str, str]:
    """A failed host's failure: its type (the error code), a one-line message, and the
    diagnostics in full with the log tail."""
    event = _failed_event(target)
    if event is None:
        return "Failed", f"{target['host']} failed", ""
    diagnostics = event.get("diagnostics") or {}
    code = diagnostics.get("errorCode") or "Failed"
    message = f"{event['lifecycleEventName']} failed: {event_detail(event)}"
    body = [
        f"host: {target['host']} ({target.get('address', '')})",
        f"event: {event['lifecycleEventName']}",
        f"error code: {code}",
    ]
    if diagnostics.get("scriptName"):
        body.append(f"script: {diagnostics['scriptName']}")
    body.append(f"message: {diagnostics.get('message', '')}")
    if diagnostics.get("logTail"):
        body += ["log tail:", diagnostics["logTail"]]
    return code, message, "\n".join(body)


def _testcase(parent: ET.Element, document: dict[str, Any], target: dict[str, Any]) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        name=xml_text(target["host"]),
        classname=xml_text(f"{document['applicationName']}.{document['deploymentGroupName']}"),
        time=f"{host_seconds(target):.3f}",
    )
    if target["status"] == Status.FAILED:
        code, message, body = failure_text(target)
        failure = ET.SubElement(case, "failure", message=xml_text(message), type=xml_text(code))
        failure.text = xml_text(body)
    elif target["status"] != Status.SUCCEEDED:
        ET.SubElement(case, "skipped", message=xml_text(f"{target['host']} {target['status']}"))
    ET.SubElement(case, "system-out").text = xml_text(_event_lines(target))


def _testsuite(parent: ET.Element, document: dict[str, Any], hostname: str) -> dict[str, int]:
    targets = document.get("targets", [])
    counts = {
        "tests": len(targets),
        "failures": sum(t["status"] == Status.FAILED for t in targets),
        "skipped": sum(t["status"] not in (Status.FAILED, Status.SUCCEEDED) for t in targets),
    }
    created = datetime.fromisoformat(document["createTime"]) if document["createTime"] else None
    suite = ET.SubElement(
        parent,
        "testsuite",
        name=xml_text(
            f"{document['applicationName']}/{document['deploymentGroupName']} "
            f"{document['deploymentId']}"
        ),
        tests=str(counts["tests"]),
        failures=str(counts["failures"]),
        errors="0",
        skipped=str(counts["skipped"]),
        time=f"{deployment_seconds(document) or 0.0:.3f}",
        # xs:dateTime as the schemas want it: UTC, no offset.
        timestamp=(created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=xml_text(hostname),
    )
    properties = ET.SubElement(suite, "properties")
    error = document.get("errorInformation") or {}
    for name, value in (
        ("deploymentId", document["deploymentId"]),
        ("status", document["status"]),
        ("deploymentConfigName", document["deploymentConfigName"]),
        ("revision", document["revision"].get("source", "")),
        ("sha256", document["revision"].get("sha256", "")),
        ("errorCode", error.get("code")),
        ("errorMessage", error.get("message")),
    ):
        if value:
            ET.SubElement(properties, "property", name=name, value=xml_text(str(value)))
    for target in targets:
        _testcase(suite, document, target)
    return counts


def junit_xml(documents: Iterable[dict[str, Any]], hostname: str | None = None) -> bytes:
    """A JUnit report: a test suite per deployment (the rollout, then its automatic rollback),
    a test case per host."""
    root = ET.Element("testsuites", name="orchestrator")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    seconds = 0.0
    for document in documents:
        for key, count in _testsuite(root, document, hostname or socket.gethostname()).items():
            totals[key] += count
        seconds += deployment_seconds(document) or 0.0
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


# --- GitHub Actions -------------------------------------------------------------------------


def under_github_actions(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """A workflow command's message, as GitHub's toolkit escapes it (``%`` first)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (title=...): ``:`` and ``,`` end it otherwise."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotations(document: dict[str, Any]) -> list[str]:
    """``::error`` workflow commands: one per failed host; one for the deployment when it did
    not succeed and no host failed (stopped, no hosts, health constraints)."""
    lines = []
    for target in document.get("targets", []):
        if target["status"] != Status.FAILED:
            continue
        _, message, body = failure_text(target)
        title = f"{document['deploymentId']} {target['host']} failed"
        # Control characters (a hook's colours) written out visibly, as in the JUnit report.
        text = xml_text(body or message)
        lines.append(f"::error title={escape_property(title)}::{escape_data(text)}")
    if not lines and document["status"] != Status.SUCCEEDED:
        error = document.get("errorInformation") or {}
        title = f"{document['deploymentId']} {document['status']}"
        message = f"{error.get('code')}: {error.get('message')}" if error else document["status"]
        lines.append(f"::error title={escape_property(title)}::{escape_data(message)}")
    return lines


def _cell(text: str) -> str:
    """Text in a Markdown table cell: no HTML, no column break, one line."""
    return html.escape(" ".join(text.split())).replace("|", "\\|")


def step_summary(document: dict[str, Any]) -> str:
    """The Markdown that goes to ``$GITHUB_STEP_SUMMARY`` for one deployment."""
    overview = document["deploymentOverview"]
    seconds = deployment_seconds(document)
    failed = [t for t in document.get("targets", []) if t["status"] == Status.FAILED]
    mark = ":x:"
    if document["status"] == Status.SUCCEEDED:  # under the minimum-healthy rule, maybe not all
        mark = ":warning:" if failed else ":white_check_mark:"
    name = f"{document['applicationName']}/{document['deploymentGroupName']}"
    lines = [
        f"### {mark} {_cell(document['deploymentId'])} {_cell(name)}: {document['status']}",
        "",
        "| hosts | succeeded | failed | skipped | duration | config |",
        "|---|---|---|---|---|---|",
        f"| {len(document.get('targets', []))} | {overview[Status.SUCCEEDED]} "
        f"| {overview[Status.FAILED]} | {overview[Status.SKIPPED]} "
        f"| {'-' if seconds is None else f'{seconds:.1f}s'} "
        f"| {_cell(document['deploymentConfigName'])} |",
        "",
    ]
    error = document.get("errorInformation") or {}
    if error:
        lines += [f"**{_cell(str(error.get('code')))}**: {_cell(str(error.get('message')))}", ""]
    return "\n".join(lines + _failed_hosts(failed)) + "\n"


def _failed_hosts(failed: list[dict[str, Any]]) -> list[str]:
    """The step summary's table of failed hosts, then each one's log tail, folded."""
    if not failed:
        return []
    lines = ["| failed host | event | error |", "|---|---|---|"]
    for target in failed:
        event = _failed_event(target)
        name = event["lifecycleEventName"] if event else ""
        detail = event_detail(event) if event else "Failed"
        lines.append(f"| {_cell(target['host'])} | {_cell(name)} | {_cell(detail)} |")
    lines.append("")
    for target in failed:
        tail = ((_failed_event(target) or {}).get("diagnostics") or {}).get("logTail")
        if tail:
            lines += [
                f"<details><summary>{_cell(target['host'])} log tail</summary>",
                "",
                f"<pre>{html.escape(tail)}</pre>",
                "</details>",
                "",
            ]
    return lines


def append_step_summary(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as summary:
        for document in documents:
            summary.write(step_summary(document))
