"""Where orchestrator keeps what it knows, and how it connects: what every API call shares.

The defaults are the command line's: the history store of ``ORCHESTRATOR_STATE`` else in the user
state dir, the bundle cache of ``ORCHESTRATOR_CACHE`` else in the user cache dir, the transport's
handshake cap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from orchestrator.state.location import state_location

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.transport.ssh import SshTransport

APP_NAME = "orchestrator"


def ssh_transport(
    max_handshakes: int | None = None,
    accept_new_file: Path | None = None,
    *,
    compress: bool = False,
) -> Callable[[], SshTransport]:
    """Makes SSH transports (with at most ``max_handshakes`` SSH handshakes at once, else the
    default; recording the keys that ``host_key_policy: accept-new`` accepts in
    ``accept_new_file``), imported by the calls that connect: importing asyncssh takes about
    0.2 s, which `status`, `history`, `logs` and `plan` need not pay."""
    from orchestrator.hostproto import HOST_PROGRAMS  # noqa: PLC0415 - deferred with asyncssh
    from orchestrator.transport.ssh import SshTransport  # noqa: PLC0415 - deferred on purpose
    from orchestrator.transport.ssh_limits import SshLimits  # noqa: PLC0415 - deferred too

    limits = SshLimits(compress=compress)
    if max_handshakes is not None:
        limits = replace(limits, max_handshakes=max_handshakes)
    return lambda: SshTransport(limits, accept_new_file, script=HOST_PROGRAMS)


@dataclass(frozen=True)
class Settings:
    """Where the history, the locks and the bundle cache are, and how many SSH handshakes may
    be in flight at once."""

    # The history store's URL or path (default $ORCHESTRATOR_STATE); None: the user state dir.
    state: str | None = field(default_factory=lambda: os.environ.get("ORCHESTRATOR_STATE") or None)
    cache: Path | None = None  # None: $ORCHESTRATOR_CACHE, else the user cache dir
    max_handshakes: int | None = None  # None: the transport's default (32)

    @property
    def state_dir(self) -> Path:
        """The directory ``state`` names, or the SQLite store's (``state/location.py``): its
        group locks and orchestrator's known_hosts."""
        return state_location(self.state).directory

    @property
    def accept_new_file(self) -> Path:
        """Where ``host_key_policy: accept-new`` records the host keys it accepted: orchestrator's
        own known_hosts in the state dir, never the operator's ~/.ssh/known_hosts."""
        return state_location(self.state).known_hosts

    @property
    def cache_dir(self) -> Path:
        if self.cache is not None:
            return self.cache
        override = os.environ.get("ORCHESTRATOR_CACHE")
        return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))

    @property
    def bundle_cache(self) -> Path:
        """Every revision deployed, as its tar: where rollbacks, syncs and resumes find it."""
        return self.cache_dir / "bundles"

    def transport(self, *, compress: bool = False) -> Callable[[], SshTransport]:
        """``compress``: SSH compression, for connections that carry no bundle (see SshLimits)."""
        return ssh_transport(self.max_handshakes, self.accept_new_file, compress=compress)
