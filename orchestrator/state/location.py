"""Where ``--state`` (or ``ORCHESTRATOR_STATE``) puts things: the one parser of that option.

Two places follow from it: the history store (a SQLite file) and the state directory, which
holds the local group locks (``locks/``) and the host keys that ``accept-new`` records
(``known_hosts``). Both are absolute, ``~`` expanded, so that rollouts started from different
directories with the same ``--state`` share one history and exclude each other.

- no value: the user state dir (``~/.local/state/orchestrator`` on Linux), ``history.sqlite`` in it
- ``sqlite:///path/file.db`` or ``sqlite://~/file.db``: that file; the state dir is its directory
- a path ending in ``.sqlite``, ``.sqlite3`` or ``.db``: the same
- any other path: a directory, holding ``history.sqlite`` and the rest
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "orchestrator"
HISTORY_FILE = "history.sqlite"
SQLITE_SCHEME = "sqlite://"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


@dataclass(frozen=True)
class StateLocation:
    history: Path  # the SQLite history store
    directory: Path  # locks/ and known_hosts

    @property
    def locks(self) -> Path:
        return self.directory / "locks"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"


def state_location(state: str | None) -> StateLocation:
    """Parse ``--state``; see the module's docstring for the forms it takes."""
    if not state:
        directory = Path(platformdirs.user_state_dir(APP_NAME))
        return StateLocation(directory / HISTORY_FILE, directory)
    is_url = state.startswith(SQLITE_SCHEME)
    named = state.removeprefix(SQLITE_SCHEME)
    if not named:
        raise ValueError(f"{state!r} names no file: sqlite:///path/to/history.sqlite")
    try:
        path = Path(named).expanduser().absolute()
    except RuntimeError as exc:  # ~user for a user this machine does not know
        raise ValueError(f"{state!r}: {exc}") from exc
    if is_url or path.suffix in SQLITE_SUFFIXES:
        return StateLocation(path, path.parent)
    return StateLocation(path / HISTORY_FILE, path)
