"""Finding and signalling exactly the processes a lab host owns (Linux /proc).

A lab host owns its sshd listener, everything descended from it, and, when it runs in its own
mount namespace, every process in that namespace (daemons started by hooks detach from sshd but
stay in the namespace). A pid is identified together with its start time, so a recycled pid is
never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[19])


def is_same_process(pid: int, started: int | None) -> bool:
    current = start_time(pid)
    return current is not None and (started is None or current == started)


def mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "ns" / "mnt")
    except OSError:
        return None


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[1])


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def in_namespace(namespace: str, mount_point: str, source: Path) -> set[int]:
    """The processes in mount namespace ``namespace`` that see ``source`` mounted at
    ``mount_point``. The kernel reuses a namespace's id as soon as the namespace is gone, so the
    id alone may name another lab's host by now (a lab's `down` stopped another's sshd)."""
    own = mount_namespace(os.getpid())
    if namespace == own:  # never claim the controller's own namespace
        return set()
    try:
        wanted = source.stat()
    except OSError:
        return set()
    found = set()
    for pid in _all_pids():
        if mount_namespace(pid) != namespace:
            continue
        try:
            seen = (PROC / str(pid) / "root" / mount_point.lstrip("/")).stat()
        except OSError:
            continue
        if (seen.st_dev, seen.st_ino) == (wanted.st_dev, wanted.st_ino):
            found.add(pid)
    return found


def command_name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; it has exited for our purposes.
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def terminate(pids: set[int], timeout: float = 5.0) -> None:
    """SIGCONT (frozen ones too), SIGTERM, then SIGKILL what is left after ``timeout``."""
    signal_all(pids, signal.SIGCONT)
    signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = {pid for pid in pids if alive(pid)}
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = {pid for pid in remaining if alive(pid)}
    signal_all(remaining, signal.SIGKILL)
