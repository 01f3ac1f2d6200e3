"""A deployment group's alarms as a stop source (codedeploy-semantics §7.5): read every
``alarm_poll_interval`` seconds while the deployment runs, zonal bake times included; one in
alarm stops it (Stopped, ``ALARM_ACTIVE``), as does one that cannot be read unless the group
sets ``ignore_poll_alarm_failure``. Whether it then rolls back is the group's
``DEPLOYMENT_STOP_ON_ALARM`` (``engine/release.py``).

The watch belongs to one deployment: the automatic rollback that its alarm may start is not
stopped by that same alarm, which would leave the hosts half way. An alarm already active when
a deployment starts stops it before any host runs a lifecycle event (the first reading is
awaited first), as CodeDeploy's alarm blocks the next deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import httpx

from orchestrator.engine.stopping import ALARM_ACTIVE, StopRequest
from orchestrator.integrations.alarms import AlarmReading, read_alarm
from orchestrator.models.groups import DeploymentGroup
from orchestrator.models.traffic import Alarm


def verdict(
    readings: Sequence[AlarmReading], ignore_poll_failure: bool
) -> tuple[str | None, list[str]]:
    """(why the deployment stops, or None; notes on unreadable alarms that were ignored)."""
    notes: list[str] = []
    for reading in readings:
        if reading.active:
            return f"alarm '{reading.name}' is active: {reading.detail}", notes
    for reading in readings:
        if reading.active is None:
            if not ignore_poll_failure:
                return (
                    f"alarm '{reading.name}' could not be read: {reading.detail} "
                    "(set ignore_poll_alarm_failure to deploy on)",
                    notes,
                )
            notes.append(f"alarm '{reading.name}' could not be read: {reading.detail}")
    return None, notes


class AlarmWatch:
    def __init__(
        self,
        alarms: Sequence[Alarm],
        deployment_id: str,
        *,
        interval: float,
        ignore_poll_failure: bool,
    ) -> None:
        self._alarms = tuple(alarms)
        self._deployment_id = deployment_id
        self._interval = interval
        self._ignore = ignore_poll_failure
        self._pending: StopRequest | None = None
        self._first = asyncio.Event()
        self._noted: set[str] = set()

    def poll(self, deployment_id: str) -> StopRequest | None:
        if deployment_id != self._deployment_id:
            return None
        pending, self._pending = self._pending, None
        return pending

    async def first_reading(self) -> None:
        await self._first.wait()

    async def run(self, wake: Callable[[], None], note: Callable[[str], None]) -> None:
        """Read the alarms until one stops the deployment (or this task is cancelled); ``wake``
        the engine when one does; ``note`` what the operator should hear of."""
        try:
            async with httpx.AsyncClient() as client:
                while True:
                    readings = await asyncio.gather(*(read_alarm(a, client) for a in self._alarms))
                    why, notes = verdict(readings, self._ignore)
                    for text in notes:
                        if text not in self._noted:  # once each: a note every poll is noise
                            self._noted.add(text)
                            note(text)
                    if why is not None:
                        self._pending = StopRequest(error_code=ALARM_ACTIVE, message=why)
                        wake()
                        return
                    self._first.set()
                    await asyncio.sleep(self._interval)
        finally:
            self._first.set()  # whatever ended the watch, nothing waits on it forever


def alarm_watch_for(group: DeploymentGroup, deployment_id: str) -> AlarmWatch:
    """``group``'s alarms as a stop source of the deployment ``deployment_id``."""
    return AlarmWatch(
        group.alarms,
        deployment_id,
        interval=group.alarm_poll_interval,
        ignore_poll_failure=group.ignore_poll_alarm_failure,
    )
