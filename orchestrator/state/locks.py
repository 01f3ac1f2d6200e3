"""The local half of "one active deployment per group": an flock on a file in the state dir.

The operating system releases an flock when its process dies, however it dies, so a crashed
rollout never leaves this lock behind; the file keeps the holder's description for messages.
The hosts hold the other half (``hostproto/programs/lock.sh``), for rollouts from other machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import LockHeld
from orchestrator.private_paths import private_file

POLL_START = 0.05
POLL_MAX = 1.0


def holder_info(deployment_id: str) -> dict[str, Any]:
    return {
        "holder": f"{getpass.getuser()}@{socket.gethostname()}",
        "deployment": deployment_id,
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe(holder: dict[str, Any]) -> str:
    return (
        f"{holder.get('deployment', '?')} ({holder.get('holder', '?')}, "
        f"pid {holder.get('pid', '?')}) since {holder.get('since', '?')}"
    )


class LocalLock:
    def __init__(self, state_dir: Path, group_id: str, label: str) -> None:
        self.path = state_dir / "locks" / f"{group_id}.lock"
        self.label = label
        self._handle: IO[str] | None = None

    def acquire(self, deployment_id: str, wait: float | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds; raise ``LockHeld`` naming the holder."""
        private_file(self.path)
        deadline = time.monotonic() + (wait or 0)
        delay = POLL_START
        handle = self.path.open("a+", encoding="utf-8")
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() + delay > deadline:
                    handle.close()
                    holder = self.holder() or {}
                    raise LockHeld(
                        f"deployment group {self.label} is locked by {describe(holder)}", holder
                    ) from None
                time.sleep(delay)  # bounded by the deadline; flock has no timed wait
                delay = min(delay * 2, POLL_MAX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder_info(deployment_id)))
        handle.flush()
        self._handle = handle

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now, or None when it is free."""
        if not self.path.exists():
            return None
        with self.path.open("r", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(ValueError):
                    return dict(json.loads(self.path.read_text() or "{}"))
                return {}
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
