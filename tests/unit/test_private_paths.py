"""The controller's state, locks, accept-new known_hosts and bundle cache are its user's alone:
directories orchestrator makes are 0700, files it writes 0600 (tightened when an older version
left them wider); a directory that already exists keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.private_paths import private_dir, private_file
from orchestrator.revision import build_revision
from orchestrator.state.locks import LocalLock
from orchestrator.state.sqlite import SqliteStore
from tests.paths import HELLO_WEB


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that hides nothing (022 would already hide group and other writes)."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_state_locks_and_cache_are_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "made" / "state"
    store = SqliteStore(state / "history.sqlite")
    store.request_stop("d-1", rollback=False, force=False)  # the -wal and -shm files, while open
    lock = LocalLock(state, "group-1", "app/group")
    lock.acquire("d-1")
    lock.release()
    cache = tmp_path / "made" / "cache" / "bundles"
    revision = build_revision(str(HELLO_WEB), cache)
    for directory in (tmp_path / "made", state, state / "locks", cache.parent, cache):
        assert _mode(directory) == 0o700, directory
    files = [state / "locks" / "group-1.lock", revision.tar_path]
    files += [p for p in state.iterdir() if p.name.startswith("history.sqlite")]
    assert len(files) == 5
    for file in files:
        assert _mode(file) == 0o600, file
    store.close()


@pytest.mark.usefixtures("open_umask")
def test_files_an_older_version_left_readable_are_tightened_but_not_its_directory(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    for name in ("history.sqlite-wal", "history.sqlite-shm"):
        (shared / name).touch(mode=0o644)
    store = SqliteStore(shared / "history.sqlite")
    assert _mode(shared) == 0o755
    for name in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm"):
        assert _mode(shared / name) == 0o600, name
    store.close()
    known = private_file(shared / "known_hosts")
    assert _mode(known) == 0o600


def test_a_directory_made_meanwhile_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert private_dir(tmp_path / "a" / "b").is_dir()
    assert private_dir(tmp_path / "a" / "b").is_dir()


@pytest.mark.usefixtures("open_umask")
def test_a_bundle_cache_an_older_version_left_open_is_closed_with_its_bundles(
    tmp_path: Path,
) -> None:
    """The cache's ``bundles`` directory is orchestrator's own, unlike a ``--state`` directory:
    one left 0755 with 0644 bundles in it (as before issue 15) is closed, bundles and all."""
    cache = tmp_path / "cache" / "bundles"
    cache.mkdir(parents=True, mode=0o755)
    old = cache / f"{'0' * 64}.tar"
    old.write_bytes(b"an older revision")
    old.chmod(0o644)
    build_revision(str(HELLO_WEB), cache)
    assert _mode(cache) == 0o700
    assert [path.name for path in cache.glob("*.tar") if _mode(path) != 0o600] == []
