"""The local half of "one active deployment per group": an flock on a file in the state dir.

The operating system releases an flock when its process dies, however it dies, so a crashed
rollout never leaves this lock behind; the file keeps the holder's description for messages.
The hosts hold the other half (``hostproto/programs/lock.sh``), for rollouts from other machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import IO

from orchestrator.errors import LockHeld
from orchestrator.hostproto.holder import LockField, LockHolder
from orchestrator.private_paths import private_file

POLL_START = 0.05
POLL_MAX = 1.0


def _document(holder: LockHolder) -> dict[str, object]:
    """The lock file's JSON document (``LockHolder.of`` reads it back)."""
    return {
        LockField.HOLDER.value: holder.holder,
        LockField.DEPLOYMENT.value: holder.deployment,
        LockField.PID.value: holder.pid,
        LockField.SINCE.value: holder.since,
    }


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
                left = deadline - time.monotonic()
                if left <= 0:
                    handle.close()
                    holder = self.holder() or LockHolder()
                    raise LockHeld(
                        f"deployment group {self.label} is locked by {holder.describe()}",
                        dict(holder.pairs()),
                    ) from None
                # Bounded by the deadline, and tried once more at it: flock has no timed wait.
                time.sleep(min(delay, left))
                delay = min(delay * 2, POLL_MAX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_document(LockHolder.here(deployment_id))))
        handle.flush()
        self._handle = handle

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when it is free."""
        if not self.path.exists():
            return None
        with self.path.open("r", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    return LockHolder.of(dict(json.loads(self.path.read_text() or "{}")))
                return LockHolder()
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def lost(self) -> None:
        """An flock is held until released: never lost."""
        return None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
