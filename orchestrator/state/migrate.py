"""``orchestrator state migrate``: bring a history store's schema up to this orchestrator's.

Both backends keep a schema version (``schema_version``). A store that has none yet is created at
this version; an older one is upgraded in place (in one transaction, under PostgreSQL's schema
advisory lock, so two migrations at once do not collide); a newer one, which a newer
orchestrator wrote, is refused with a ``StoreError`` (exit 8): this one would misread it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import NamedTuple

from orchestrator.errors import StoreError
from orchestrator.state.location import state_location


class Migrated(NamedTuple):
    location: str  # the file, or the URL without its password
    before: int  # 0: no schema (created now)
    after: int


def migrate(url: str | None) -> Migrated:
    """Upgrade the store ``--state`` names (None: the default) to this orchestrator's schema."""
    location = state_location(url)
    if location.scheme == "postgresql" and location.url is not None:
        from orchestrator.state import postgres_db  # noqa: PLC0415 - psycopg only for PostgreSQL

        where = postgres_db.server(location.url)
        with closing(postgres_db.connect(location.url, "migrate")) as db:
            before, after = postgres_db.migrate(db, where)
        return Migrated(location.display, before, after)
    from orchestrator.state import sqlite_db  # noqa: PLC0415

    path = location.history
    before = 0
    try:
        if path.exists():
            uri = path.resolve().as_uri()
            with closing(sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)) as db:
                before = sqlite_db.schema_version(db)
        with closing(sqlite_db.connect_writing(path)) as db:
            after = sqlite_db.schema_version(db)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(path, "cannot be migrated", exc) from exc
    return Migrated(str(path), before, after)
