"""The Install step's request body: an ``InstallPlan`` as the stream ``install.sh`` reads on its
stdin (``programs/install.sh``), the same bytes for every host, made once per plan.

The stream is line based, tab separated (revisions refuse names with control characters, so no
field can hold a tab or newline)::

    J  <install.json document>                      the audit copy, written to <gid>-install.json
    B  <DISALLOW|OVERWRITE|RETAIN>
    D  <index> <path>                               mkdir unless it exists; recorded only if made
    F  <index> <archive path> <dest>                copy a file or link
    P  <index> <mode> <owner> <group> <acls> <ctx>  <path>   applied only if <index> was made
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from enum import StrEnum

from orchestrator.install_plan import InstallPlan

NONE = "-"  # a permission's field that is not set


class Record(StrEnum):
    """The kinds of the stream's lines."""

    AUDIT = "J"
    BEHAVIOR = "B"
    DIRECTORY = "D"
    FILE = "F"
    PERMISSION = "P"


def encoded(plan: InstallPlan) -> bytes:
    """The stream for every host, as UTF-8: made once per plan (it is kept on the plan)."""
    if plan.stream is None:
        out = io.BytesIO()
        out.write(f"{Record.AUDIT.value}\t".encode())
        _write_audit(plan, out)
        out.write(f"\n{Record.BEHAVIOR.value}\t{plan.behavior}\n".encode())
        _write_lines(out, _lines(plan))
        # A plan of many files makes a stream of many megabytes: written once, as bytes (not a
        # list of lines, then a string, then its bytes), and handed over without a copy.
        plan.stream = out.getvalue()
    return plan.stream


def rendered(plan: InstallPlan) -> str:
    """``encoded`` as text."""
    return encoded(plan).decode()


def audit_json(plan: InstallPlan) -> str:
    """The record ``J``'s document: the commands the install runs, as the agent's install.json."""
    out = io.BytesIO()
    _write_audit(plan, out)
    return out.getvalue().decode()


def _lines(plan: InstallPlan) -> Iterator[str]:
    directory, copy, permission = Record.DIRECTORY.value, Record.FILE.value, Record.PERMISSION.value
    for step in plan.instructions:
        if step.kind == "mkdir":
            yield f"{directory}\t{step.index}\t{step.destination}\n"
        else:
            yield f"{copy}\t{step.index}\t{step.source}\t{step.destination}\n"
    for index, rule, path in plan.permissions:
        context = rule.context
        fields = [
            str(index),
            rule.mode or NONE,
            rule.owner or NONE,
            rule.group or NONE,
            ",".join(rule.acls) or NONE,
            f"{context.user or ''}:{context.type}:{context.range or ''}" if context else NONE,
            path,
        ]
        yield f"{permission}\t" + "\t".join(fields) + "\n"


def _write_audit(plan: InstallPlan, out: io.BytesIO) -> None:
    """``{"instructions": [...]}``, a command at a time (no list of dicts: 200,000 of them took
    250 bytes an entry)."""
    out.write(b'{"instructions":[')
    _write_lines(out, _audit_commands(plan), ",")
    out.write(b"]}")


def _audit_commands(plan: InstallPlan) -> Iterator[str]:
    string = json.dumps
    for step in plan.instructions:
        if step.kind == "mkdir":
            yield f'{{"type":"mkdir","directory":{string(step.destination)}}}'
        else:
            source, destination = string(step.source), string(step.destination)
            yield f'{{"type":"copy","source":{source},"destination":{destination}}}'
    for _, rule, path in plan.permissions:
        if rule.mode:
            yield _compact({"type": "chmod", "mode": rule.mode, "file": path})
        if rule.acls:
            yield _compact({"type": "setfacl", "acl": rule.acls, "file": path})
        if rule.owner or rule.group:
            yield _compact(
                {"type": "chown", "owner": rule.owner, "group": rule.group, "file": path}
            )


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _write_lines(out: io.BytesIO, lines: Iterator[str], separator: str = "") -> None:
    """``separator.join(lines)`` into ``out``, encoded a few thousand lines at a time."""
    chunk: list[str] = []
    first = True
    for line in lines:
        chunk.append(line)
        if len(chunk) == 4096:
            out.write(((separator if not first else "") + separator.join(chunk)).encode())
            chunk.clear()
            first = False
    if chunk:
        out.write(((separator if not first else "") + separator.join(chunk)).encode())
