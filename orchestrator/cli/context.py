"""What every command shares: where the inventory and state are, and the two consoles."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
import platformdirs
from rich.console import Console

from orchestrator.state.location import state_location

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.models.inventory import Inventory
    from orchestrator.revision import Revision
    from orchestrator.transport.ssh import SshTransport

APP_NAME = "orchestrator"


def ssh_transport(
    max_handshakes: int | None = None, accept_new_file: Path | None = None
) -> Callable[[], SshTransport]:
    """Makes SSH transports (with at most ``max_handshakes`` SSH handshakes at once, else the
    default; recording the keys that ``host_key_policy: accept-new`` accepts in
    ``accept_new_file``), imported by the commands that connect: importing asyncssh takes about
    0.2 s, which `status`, `history`, `logs` and `plan` need not pay."""
    from orchestrator.transport.ssh import (  # noqa: PLC0415 - deferred on purpose
        SshLimits,
        SshTransport,
    )

    limits = SshLimits() if max_handshakes is None else SshLimits(max_handshakes=max_handshakes)
    return lambda: SshTransport(limits, accept_new_file)


@dataclass
class CliContext:
    inventory_path: Path
    inventory_explicit: bool
    state: str | None
    max_handshakes: int | None = None  # None: the transport's default
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def inventory(self) -> Inventory:
        # The models (and pydantic, 0.3 s to import) only for the commands that read an inventory.
        from orchestrator.models.inventory import load_inventory  # noqa: PLC0415 - deferred

        return load_inventory(self.inventory_path)

    @property
    def state_dir(self) -> Path:
        """Where the local group locks are: the directory ``--state`` names or the history
        store's (``state/location.py``)."""
        return state_location(self.state).directory

    @property
    def accept_new_file(self) -> Path:
        """Where ``host_key_policy: accept-new`` records the host keys it accepted: orchestrator's
        own known_hosts in the state dir, never the operator's ~/.ssh/known_hosts."""
        return state_location(self.state).known_hosts

    @property
    def cache_dir(self) -> Path:
        override = os.environ.get("ORCHESTRATOR_CACHE")
        return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))

    def revision(self, spec: str) -> Revision:
        """Build and fully check a revision, its install plan included (exit 3 on any problem)."""
        from orchestrator.install_plan import build_install_plan  # noqa: PLC0415 - deferred
        from orchestrator.revision import build_revision  # noqa: PLC0415 - deferred

        revision = build_revision(spec, self.cache_dir / "bundles")
        build_install_plan(revision.appspec, revision.entries, "DISALLOW")
        return revision


# Hands each command the CliContext the group made.
pass_context = click.make_pass_decorator(CliContext)
