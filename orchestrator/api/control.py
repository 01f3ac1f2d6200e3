"""A handle on a deployment that an API call runs: how a caller stops it while it runs.

``deploy``, ``rollback``, ``sync`` and ``resume`` block until the release ends; a caller that
wants to stop it early makes a ``DeploymentControl``, passes it in, and calls ``stop`` from
another thread, an event sink or a signal handler. Requests are carried into the event loop that
runs the deployment (``call_soon_threadsafe``) to the release's stop sources
(``engine/stopping.py``: ``stop`` to this process's ``OperatorStop``, ``stop_as_requested`` to
the ``StoreStop`` that reads `orchestrator stop`'s request), and the engine is woken to poll
them, so they never act in the middle of an event. A stop asked before the release starts
applies as soon as it does; one asked after it ended goes nowhere (not to a next release that
reuses the handle).

The API installs no signal handler: the command line does, from ``on_start`` (called in the
event loop when the release starts, so ``loop.add_signal_handler`` works there) and removes them
in ``on_end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.engine.release import Releaser
    from orchestrator.engine.stopping import StoreStop

Hook = Callable[["DeploymentControl"], None]


class DeploymentControl:
    """Usable again for a later release once one ended; a request made between two releases
    goes nowhere. Thread-safe: ``stop`` may race ``attach`` and ``detach``."""

    def __init__(self, *, on_start: Hook | None = None, on_end: Hook | None = None) -> None:
        self._on_start = on_start
        self._on_end = on_end
        self._lock = threading.Lock()  # _loop, _early and _ended, for requests from any thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._releaser: Releaser | None = None
        self._stored: StoreStop | None = None
        self._early: list[tuple[bool, bool]] = []  # (force, rollback) asked before the start
        self._ended = False  # a release ended: requests go nowhere until the next one starts

    @property
    def deployment_id(self) -> str | None:
        """The deployment running now (the automatic rollback once it runs), if any."""
        releaser = self._releaser
        current = releaser.current if releaser is not None else None
        return current.deployment.deployment_id if current is not None else None

    def stop(self, *, force: bool = False, rollback: bool = False) -> None:
        """No new lifecycle event starts; running hooks finish, or with ``force`` (or when asked
        a second time) are terminated. ``rollback``: then roll back the hosts it updated."""
        with self._lock:
            loop = self._loop
            if loop is None:
                if not self._ended:
                    self._early.append((force, rollback))
                return
        self._call(loop, self._stop, force, rollback)

    def stop_as_requested(self) -> None:
        """Stop as `orchestrator stop` asked from elsewhere (its options are in the history)."""
        with self._lock:
            loop = self._loop
        if loop is not None:
            self._call(loop, self._stop_as_requested)

    @staticmethod
    def _call(loop: asyncio.AbstractEventLoop, function: Callable[..., None], *args: bool) -> None:
        # The release may end and its loop close between the lock and this call: then the
        # request goes nowhere, as any after the end does.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(function, *args)

    def _stop(self, force: bool, rollback: bool) -> None:
        if self._releaser is not None:
            self._releaser.request_stop(force=force, rollback=rollback)

    def _stop_as_requested(self) -> None:
        if self._releaser is None or self._stored is None:
            return
        self._stored.ring()
        self._releaser.control.wake()

    # -- for the API ------------------------------------------------------------------------------

    def attach(self, releaser: Releaser, stored: StoreStop) -> None:
        """The release starts (called in its event loop); ``stored`` is its source for
        `orchestrator stop`'s requests."""
        self._releaser, self._stored = releaser, stored
        with self._lock:
            self._loop, self._ended = asyncio.get_running_loop(), False
            early, self._early = self._early, []
        for force, rollback in early:
            releaser.request_stop(force=force, rollback=rollback)
        if self._on_start is not None:
            self._on_start(self)

    def detach(self) -> None:
        """The release ended: later requests go nowhere."""
        try:
            if self._on_end is not None:
                self._on_end(self)
        finally:
            with self._lock:
                self._loop, self._ended, self._early = None, True, []
            self._releaser = self._stored = None
