"""The host locks' heartbeat: keeps each lock this deployment holds fresh while it runs.

Each host's beat is bounded by the interval, so a hung host never holds up the others'. A lock
no longer ours (taken over) stops that host; a beat that fails or goes unanswered is said once
per host.
"""

from __future__ import annotations

import asyncio

from orchestrator.engine.fleet import Fleet
from orchestrator.engine.remote import LockMode, LockReply
from orchestrator.errors import HostError
from orchestrator.events import EventSink, Notice
from orchestrator.hostproto.replies import LockState


class Heartbeat:
    def __init__(self, fleet: Fleet, emit: EventSink) -> None:
        self.fleet = fleet
        self.emit = emit
        self.ttl = fleet.rollout.lock_ttl

    async def run(self) -> None:
        """Beat every ``lock_ttl / 4`` seconds until cancelled."""
        interval = self.ttl / 4
        told: set[tuple[str, str]] = set()
        fleet = self.fleet
        while True:
            await asyncio.sleep(interval)
            names = [name for name in fleet.remotes if name in fleet.locked - fleet.lost.keys()]
            results = await asyncio.gather(*(self._beat(name, interval) for name in names))
            for name, result in zip(names, results, strict=True):
                if isinstance(result, LockReply) and result.state == LockState.LOST:
                    fleet.lose(name, result)
                    continue
                problem = self._problem(result, interval)
                if problem is not None and (name, problem[0]) not in told:
                    told.add((name, problem[0]))
                    self.emit(Notice(fleet.deployment, problem[1], name))

    async def _beat(self, name: str, timeout: float) -> LockReply | None:
        """One host's heartbeat; None when it did not answer in time. A connection that died
        is the host's lifecycle's business (it reconnects); its lock is refreshed again then."""
        fleet = self.fleet
        try:
            return await asyncio.wait_for(
                fleet.remotes[name].lock(LockMode.HEARTBEAT, fleet.deployment.deployment_id),
                timeout,
            )
        except TimeoutError:
            return None
        except HostError:
            return LockReply(LockState.UNREACHABLE)

    def _problem(self, lock: LockReply | None, interval: float) -> tuple[str, str] | None:
        """(kind, what to say) for a heartbeat that did not refresh the lock."""
        if lock is None:
            return "timeout", (
                f"the lock heartbeat got no answer within {interval:g} s (the other hosts' "
                f"heartbeats go on); after {self.ttl} s without one another deployment may take "
                "this host's lock over, and the next heartbeat that answers says so"
            )
        if lock.state == LockState.FAILED:
            return "failed", (
                f"cannot refresh the group's lock on this host: {lock.error or ''}; "
                f"after {self.ttl} s without one another deployment may take it over"
            )
        return None
