"""The fleet's connections and the group's host locks, for one deployment.

One connection per host for the whole deployment (opened under the transport's handshake cap).
Reading a host's state and taking the group's lock on it is one round trip; a left-over lock of a
deployment known to have ended is taken over; if another live deployment holds any host's lock,
nothing starts (``LockHeld``). At the end every lock this deployment holds is released (over a
fresh connection if the old one died) and every connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib

from orchestrator.engine.remote import LockMode, LockReply, Probe, RemoteHost
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import Control
from orchestrator.errors import HostError, LockHeld
from orchestrator.events import EventSink, Notice
from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.replies import LockState
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import Transport


class Fleet:
    """The deployment's hosts as connections, probes and locks."""

    def __init__(
        self, rollout: Rollout, transport: Transport, control: Control, emit: EventSink
    ) -> None:
        self.rollout = rollout
        self.transport = transport
        self.control = control
        self.emit = emit
        self.deployment = rollout.deployment
        self.remotes: dict[str, RemoteHost] = {}
        self.probes: dict[str, Probe] = {}
        self.locked: set[str] = set()  # hosts whose lock this deployment took
        self.lost: dict[str, str] = {}  # hosts whose lock was taken over: why

    async def connect_all(self) -> tuple[dict[str, str], dict[str, LockHolder]]:
        """Connect, probe and lock every host: (unreachable hosts and why, hosts whose stale
        lock was taken over and its holder). ``LockHeld`` after closing everything, if another
        live deployment holds a lock."""
        locks: dict[str, LockReply] = {}
        results = await asyncio.gather(*(self._connect(h, locks) for h in self.rollout.hosts))
        await self._take_over_left_overs(locks)
        held = {name: lock for name, lock in locks.items() if not lock.ours}
        if held:
            name, lock = sorted(held.items())[0]
            await self.release_and_close()
            raise LockHeld(
                f"deployment group {self.deployment.application}/{self.deployment.group} is locked "
                f"on {len(held)} host(s), {name} by {lock.holder.describe()}",
                dict(lock.holder.pairs()),
            )
        self.locked = set(locks)
        unreachable = {
            h.name: m for h, m in zip(self.rollout.hosts, results, strict=True) if m is not None
        }
        taken_over = {
            name: lock.holder for name, lock in locks.items() if lock.state == LockState.TOOK_OVER
        }
        return unreachable, taken_over

    async def _connect(self, host: HostSpec, locks: dict[str, LockReply]) -> str | None:
        """Connect, probe and lock one host; why it cannot be deployed to, else None."""
        try:
            session = await self.transport.connect(host)
            remote = RemoteHost(session, host, self.deployment.group_id)
            self.remotes[host.name] = remote
            probe, lock = await remote.probe_and_lock(
                self.deployment.deployment_id, self.rollout.lock_ttl, self.rollout.lock_holder
            )
            self.probes[host.name] = probe
            if probe.missing_tools:
                # The probe stopped before the lock: nothing on the host changed.
                return (
                    f"the host lacks {', '.join(probe.missing_tools)}, which orchestrator "
                    "runs on every host (the README lists what hosts need)"
                )
            if lock.state == LockState.FAILED:
                # Not ours and nobody else's (a full disk on the host): a failed target.
                error = lock.error or "unknown error"
                return f"cannot take the deployment group's lock on the host: {error}"
            locks[host.name] = lock
        except HostError as exc:
            return f"host unreachable: {exc.message}"
        return None

    async def _take_over_left_overs(self, locks: dict[str, LockReply]) -> None:
        """Locks another deployment left behind when it ended become this one's."""
        for name, lock in list(locks.items()):
            left_over = lock.deployment or ""
            if not lock.ours and left_over and self.control.finished(left_over):
                with contextlib.suppress(HostError):
                    locks[name] = await self.remotes[name].take_over_lock(
                        self.deployment.deployment_id,
                        self.rollout.lock_ttl,
                        self.rollout.lock_holder,
                        left_over,
                    )

    async def reconnect(self, remote: RemoteHost) -> RemoteHost:
        with contextlib.suppress(HostError):
            await remote.session.close()
        session = await self.transport.connect(remote.spec)
        fresh = RemoteHost(session, remote.spec, remote.group_id)
        self.remotes[remote.spec.name] = fresh
        return fresh

    def lose(self, name: str, lock: LockReply) -> None:
        """``name``'s lock was taken over: nothing more of this deployment runs there."""
        holder = f" by {lock.holder.describe()}" if lock.deployment else ""
        self.lost[name] = (
            f"the deployment group's lock on this host was taken over{holder}: no further "
            "lifecycle event of this deployment runs here"
        )
        self.emit(Notice(self.deployment, self.lost[name], name))

    async def release_and_close(self) -> None:
        await asyncio.gather(*(self._release(name) for name in list(self.remotes)))
        await self.transport.close()

    async def _release(self, name: str) -> None:
        remote = self.remotes.pop(name)
        released = None
        try:
            released = await remote.lock(LockMode.RELEASE, self.deployment.deployment_id)
        except HostError:
            # The connection died (the host's sshd, say): one fresh one to release the lock,
            # or the next deployment waits for the lock's TTL.
            with contextlib.suppress(HostError):
                remote = await self.reconnect(remote)
                self.remotes.pop(name, None)
                released = await remote.lock(LockMode.RELEASE, self.deployment.deployment_id)
        if released is not None and released.state == LockState.FAILED:
            message = (
                f"cannot release the group's lock on this host: {released.error}"
                f"; the next deployment takes it over {self.rollout.lock_ttl} s after its "
                "last heartbeat"
            )
            self.emit(Notice(self.deployment, message, name))
        with contextlib.suppress(HostError):
            await remote.session.close()
