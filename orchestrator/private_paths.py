"""Files and directories only the controller's user can read: the history store, the state dir
(locks, the accept-new known_hosts) and the bundle cache hold revisions (whose files may be
secrets the appspec installs 0600) and deployment records.

The rule: a directory orchestrator creates is 0700 (its missing parents too); a file it writes is
0600, tightened when it exists with a wider mode. A directory that already exists keeps its mode:
``--state`` or ``ORCHESTRATOR_CACHE`` may name a shared directory (a project's, /tmp), and what
orchestrator puts there is unreadable to others whatever the directory's mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory, made 0700 with any missing parents when it does not exist."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            # mkdir's mode goes through the umask, which only removes bits: 0700 or tighter.
            directory.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its maker's business
        directory.chmod(DIRECTORY_MODE)  # a umask such as 0277 must not leave it unusable
    return path


def private_file(path: Path) -> Path:
    """``path`` as an existing file of mode 0600 (created empty, or tightened)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
            # A store on a read-only filesystem cannot be tightened (nor written): it is read.
            with contextlib.suppress(OSError):
                os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path) -> None:
    """A file that exists (another program made it: SQLite's -wal and -shm) made 0600."""
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    if mode & ~FILE_MODE and not stat.S_ISLNK(path.lstat().st_mode):
        with contextlib.suppress(OSError):
            path.chmod(FILE_MODE)
