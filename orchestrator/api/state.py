"""The history store itself: upgrade its schema (``migrate_state``) and copy a history into
another store (``copy_state``), as ``orchestrator state migrate`` and ``state copy`` do."""

from __future__ import annotations

from orchestrator.api.settings import Settings
from orchestrator.state.copy import Copied, copy_history
from orchestrator.state.migrate import Migrated, migrate


def migrate_state(settings: Settings | None = None) -> Migrated:
    """Upgrade the schema of the store ``settings.state`` names (creating it when it has none):
    ``Migrated(location, before, after)``; ``StoreError`` for a store newer than this
    orchestrator knows, or one it cannot reach."""
    return migrate((settings or Settings()).state)


def copy_state(source: str | None, destination: str | None) -> Copied:
    """Copy the history of ``source`` into ``destination`` (``--state`` forms: a path, a
    ``sqlite://`` or ``postgresql://`` URL): idempotent; deployments still running are left out
    and named (``Copied.running``)."""
    return copy_history(source, destination)
