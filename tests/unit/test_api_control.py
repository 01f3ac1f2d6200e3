"""DeploymentControl: requests before a release start it stopped, after it ended go nowhere."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from orchestrator.api.control import DeploymentControl
from orchestrator.engine.release import Releaser
from orchestrator.engine.stopping import Control, StoreStop


class _Releaser:
    def __init__(self) -> None:
        self.requests: list[tuple[bool, bool]] = []
        self.control = Control()
        self.current = None

    def request_stop(self, *, force: bool = False, rollback: bool = False) -> None:
        self.requests.append((force, rollback))


def _release(control: DeploymentControl, releaser: _Releaser, during: Any = None) -> None:
    """One release's attach and detach, with ``during()`` run in between (in the loop)."""

    async def go() -> None:
        control.attach(cast(Releaser, releaser), cast(StoreStop, None))
        if during is not None:
            during()
        await asyncio.sleep(0.05)  # requests from other threads arrive
        control.detach()

    asyncio.run(go())


def test_a_stop_before_the_start_applies_one_after_the_end_goes_nowhere() -> None:
    control = DeploymentControl()
    control.stop(rollback=True)
    first = _Releaser()
    _release(control, first)
    assert first.requests == [(False, True)]
    control.stop(force=True)  # the release ended: not for the next one that reuses the handle
    second = _Releaser()
    _release(control, second)
    assert second.requests == []
    third = _Releaser()
    _release(control, third, during=control.stop)
    assert third.requests == [(False, False)]


def _racing_start(control: DeploymentControl, releaser: _Releaser, askers: int) -> None:
    go = threading.Barrier(askers + 1)

    def ask() -> None:
        go.wait()
        control.stop()

    async def start() -> None:
        go.wait()
        control.attach(cast(Releaser, releaser), cast(StoreStop, None))
        await asyncio.sleep(0.05)
        control.detach()

    threads = [threading.Thread(target=ask) for _ in range(askers)]
    for thread in threads:
        thread.start()
    asyncio.run(start())
    for thread in threads:
        thread.join()


def test_stops_from_other_threads_racing_the_start_are_each_taken_once() -> None:
    for _ in range(20):
        releaser = _Releaser()
        _racing_start(DeploymentControl(), releaser, 4)
        assert len(releaser.requests) == 4
