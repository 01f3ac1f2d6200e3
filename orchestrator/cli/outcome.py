"""What a deploying command shows once its deployment ended: a short summary when every host
succeeded, the full per-host table on failure or with ``-v``, only errors with ``-q``, the JSON
document with ``--output json``; and the reports for CI (``--junit``, GitHub Actions)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from orchestrator.cli.ci_reports import (
    append_step_summary,
    error_annotations,
    junit_xml,
    under_github_actions,
)
from orchestrator.cli.context import CliContext
from orchestrator.cli.plain import deployment_lines, error_lines, summary
from orchestrator.cli.render import deployment_table
from orchestrator.models.results import Status


@dataclass(frozen=True)
class Shown:
    """How much the command shows: -q, -v, --output."""

    output: str = "text"
    verbose: bool = False
    quiet: bool = False


def clean(document: dict[str, Any]) -> bool:
    """Succeeded on every host: the case where a summary says all there is to say."""
    return document["status"] == Status.SUCCEEDED and not any(
        t["status"] == Status.FAILED for t in document.get("targets", [])
    )


def show(ctx: CliContext, documents: list[dict[str, Any]], shown: Shown) -> None:
    """The result on stdout (errors on stderr with -q)."""
    if shown.output == "json":
        click.echo(json.dumps(documents[0], indent=2))
        return
    if shown.quiet:
        for document in documents:
            for line in error_lines(document):
                click.echo(line, err=True)
        return
    for document in documents:
        if not shown.verbose and clean(document):
            click.echo("\n".join(summary(document)))
        elif ctx.tables:
            ctx.out.print(deployment_table(document))
        else:
            click.echo("\n".join(deployment_lines(document)))


def github_actions(
    documents: list[dict[str, Any]], shown: Shown, environ: Mapping[str, str] = os.environ
) -> None:
    """Under GitHub Actions: an ``::error`` annotation per failed host (on stdout; on stderr with
    --output json, which keeps stdout one document: the runner reads commands from both), and a
    Markdown summary appended to ``$GITHUB_STEP_SUMMARY``."""
    if not under_github_actions(environ):
        return
    for document in documents:
        for line in error_annotations(document):
            click.echo(line, err=shown.output == "json")
    summary_file = environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            append_step_summary(Path(summary_file), documents)
        except OSError as exc:
            click.echo(f"warning: cannot append to $GITHUB_STEP_SUMMARY: {exc}", err=True)


class JunitReport:
    """The ``--junit`` file, opened before the deployment starts: a path that cannot be written
    is a usage error (exit 2) with nothing contacted, not a report lost at the end. It is
    replaced only once a deployment ran: a command that started none (exit 3, 7, 8) leaves an
    earlier report as it was, and no empty file where there was none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.existed = path.exists()
        try:
            self.stream: IO[bytes] = path.open("ab")  # "wb" would empty it already
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write {path}: {exc.strerror}", param_hint="--junit"
            ) from None
        self.written = False

    def write(self, documents: list[dict[str, Any]]) -> None:
        try:
            self.stream.seek(0)
            self.stream.truncate()
            self.stream.write(junit_xml(documents))
            self.stream.flush()
        except OSError as exc:
            click.echo(f"error: cannot write the JUnit report {self.path}: {exc}", err=True)
        self.written = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            if not self.written and not self.existed:
                self.path.unlink()
