"""What every command shares: where the inventory and state are, and the two consoles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from orchestrator.api.settings import APP_NAME, Settings, ssh_transport
from orchestrator.errors import InvalidRequest

if TYPE_CHECKING:
    from orchestrator.models.inventory import Inventory
    from orchestrator.revision import Revision

__all__ = ["APP_NAME", "CliContext", "pass_context", "ssh_transport", "usage_errors"]


def colour_allowed() -> bool:
    """False under NO_COLOR (any non-empty value, as no-color.org says) and TERM=dumb: then
    orchestrator writes no ANSI escape at all, neither colours nor a live view's cursor moves."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _console(stderr: bool) -> Console:
    # color_system None: rich's own NO_COLOR handling drops colours but keeps bold and dim.
    if colour_allowed():
        return Console(stderr=stderr, soft_wrap=True)
    return Console(stderr=stderr, soft_wrap=True, color_system=None)


@contextmanager
def usage_errors() -> Iterator[None]:
    """A request the API refused (no such deployment, ...) is a usage error of the command."""
    try:
        yield
    except InvalidRequest as exc:
        raise click.UsageError(str(exc)) from None


@dataclass
class CliContext:
    inventory_path: Path
    inventory_explicit: bool
    state: str | None
    max_handshakes: int | None = None  # None: the transport's default
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))

    @property
    def tables(self) -> bool:
        """Tables for a person at a terminal; complete plain lines for pipes, cron and CI logs,
        where an 80-column table wraps and cuts what it holds."""
        return self.out.is_terminal

    @property
    def live_view(self) -> bool:
        """The animated progress view: on a terminal that can move its cursor, unless NO_COLOR."""
        return self.err.is_terminal and colour_allowed()

    def inventory(self) -> Inventory:
        # The models (and pydantic, 0.3 s to import) only for the commands that read an inventory.
        from orchestrator.models.inventory import load_inventory  # noqa: PLC0415 - deferred

        return load_inventory(self.inventory_path)

    def settings(self) -> Settings:
        return Settings(state=self.state, max_handshakes=self.max_handshakes)

    @property
    def state_dir(self) -> Path:
        return self.settings().state_dir

    @property
    def accept_new_file(self) -> Path:
        return self.settings().accept_new_file

    @property
    def cache_dir(self) -> Path:
        return self.settings().cache_dir

    def revision(self, spec: str, version: str | None = None) -> Revision:
        """Build and fully check a revision, its install plan included (exit 3 on any problem);
        ``version``: an s3:// revision's (``--revision-version``)."""
        from orchestrator.api.deploying import load_revision  # noqa: PLC0415 - deferred
        from orchestrator.models.bundle_store import with_version  # noqa: PLC0415 - deferred

        if version is not None:
            try:
                spec = with_version(spec, version)
            except ValueError as exc:
                raise click.UsageError(f"--revision-version: {exc}") from None
        return load_revision(spec, self.settings())


# Hands each command the CliContext the group made.
pass_context = click.make_pass_decorator(CliContext)
