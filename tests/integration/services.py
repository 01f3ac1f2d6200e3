"""Waiting for a service a test started (HAProxy, Prometheus, an S3 server) to answer."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    ask: Callable[[], T | None],
    process: subprocess.Popen[bytes],
    timeout: float,
    interval: float = 0.1,
) -> T | None:
    """``ask()`` every ``interval`` seconds until it answers (None, or an OSError: not yet), the
    service's process ends, or ``timeout`` passes: its answer, else None."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = ask()
        except OSError:
            answer = None
        if answer is not None:
            return answer
        if process.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(interval)  # polling the service's own answer, under the deadline above
