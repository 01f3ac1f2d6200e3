"""HAProxy as the deployment group's load balancer, through its runtime API (the ``stats socket``
of its ``global`` section, at ``level admin``).

BlockTraffic puts the host's server in ``drain`` (weight 0: no new connections, what it serves
goes on) and waits until its current sessions end or ``drain_timeout`` passes. AllowTraffic marks
its health down while it is still drained, puts it back (``ready``) and waits until HAProxy's
own checks bring it ``UP`` (``rise`` fresh checks), at most ``health_timeout``. Why: a health
state changes only after ``fall`` failed checks, so a restart faster than that never shows DOWN
and a bare ``UP`` would be the old revision's (measured with ``inter 3s fall 3``). Why ``drain``
and not ``maint``: HAProxy stops checking a server in maintenance.

Each command is one connection (the API's non-interactive mode: one request, one reply, the
server closes), so a reply needs no framing and a lost connection loses one poll, not a session.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass

from orchestrator.errors import LoadBalancerError

REPLY_LIMIT = 4 * 1024 * 1024  # a `show stat` of a few thousand servers
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServerStat:
    """One row of ``show stat`` for a server: what the drain and health waits read."""

    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2" (going down), "no check", ...
    sessions: int  # scur: connections the server is handling now
    check_status: str  # L7OK, L4CON, ... ("" when it has no check)

    @property
    def healthy(self) -> bool:
        # "UP 1/2" is a server going down: one more failed check and it is DOWN.
        return self.status in ("UP", "no check")


@dataclass(frozen=True)
class RuntimeApi:
    """Where HAProxy's runtime API listens: ``host:port`` or a unix socket path."""

    address: str

    async def command(self, line: str, timeout: float = 10.0) -> str:
        if "\n" in line or ";" in line:
            raise LoadBalancerError(f"haproxy: refusing a command with a separator: {line!r}")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await self._open()
                try:
                    writer.write(line.encode() + b"\n")
                    await writer.drain()
                    chunks: list[bytes] = []
                    size = 0
                    while chunk := await reader.read(65536):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > REPLY_LIMIT:
                            raise LoadBalancerError(
                                f"haproxy {self.address}: a reply over {REPLY_LIMIT} bytes"
                            )
                finally:
                    writer.close()
        except TimeoutError as exc:
            raise LoadBalancerError(
                f"haproxy {self.address}: no reply to {line!r} in {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise LoadBalancerError(
                f"haproxy {self.address}: cannot reach the runtime API: {exc}"
            ) from exc
        return b"".join(chunks).decode(errors="replace")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.startswith("/"):
            return await asyncio.open_unix_connection(self.address)
        host, _, port = self.address.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))


class HAProxy:
    """The load balancer of one deployment group, one HAProxy backend."""

    def __init__(
        self,
        api: RuntimeApi,
        backend: str,
        *,
        drain_timeout: float,
        health_timeout: float,
        poll_interval: float = 0.2,
    ) -> None:
        self._api = api
        self._backend = backend
        self._drain_timeout = drain_timeout
        self._health_timeout = health_timeout
        self._poll = poll_interval

    async def stat(self, server: str) -> ServerStat:
        reply = await self._api.command(f"show stat {self._backend} 4 -1")
        lines = reply.lstrip("# ").splitlines()
        for row in csv.DictReader(io.StringIO("\n".join(lines))):
            if row.get("svname") == server and row.get("pxname") == self._backend:
                return ServerStat(
                    status=row.get("status", ""),
                    sessions=int(row.get("scur") or 0),
                    check_status=row.get("check_status", ""),
                )
        raise LoadBalancerError(
            f"haproxy {self._api.address}: no server '{server}' in backend '{self._backend}'"
            + ("" if reply.startswith("# pxname") else f": {reply.strip()[:200]}")
        )

    async def set_state(self, server: str, state: str) -> None:
        await self._command_ok(f"set server {self._backend}/{server} state {state}")

    async def _command_ok(self, line: str) -> None:
        reply = (await self._api.command(line)).strip()
        if reply:  # the API answers a successful `set server` with an empty line
            raise LoadBalancerError(f"haproxy {self._api.address}: {line}: {reply}")

    async def block(self, server: str) -> str:
        """Drain ``server`` and wait for its sessions to end (at most ``drain_timeout``).
        Returns what happened, for the event's log."""
        await self.stat(server)  # a server the backend does not have fails before any change
        await self.set_state(server, "drain")
        deadline = time.monotonic() + self._drain_timeout
        stat = await self.stat(server)
        while stat.sessions > 0 and time.monotonic() < deadline:
            await asyncio.sleep(self._poll)
            stat = await self.stat(server)
        if stat.sessions > 0:
            return (
                f"{self._backend}/{server}: drained; {stat.sessions} session(s) still open after "
                f"the drain timeout of {self._drain_timeout:g} s"
            )
        return f"{self._backend}/{server}: drained, no session left"

    async def allow(self, server: str) -> str:
        """Put ``server`` back and wait until HAProxy's health check sees it up."""
        if (await self.stat(server)).status != "no check":
            # While it is still drained: only `rise` fresh checks of the new revision bring it
            # up again, even after a restart faster than the checks' `fall` could notice.
            await self._command_ok(f"set server {self._backend}/{server} health down")
        await self.set_state(server, "ready")
        deadline = time.monotonic() + self._health_timeout
        while True:
            stat = await self.stat(server)
            if stat.healthy:
                return (
                    f"{self._backend}/{server}: {stat.status} ({stat.check_status or 'no check'})"
                )
            if time.monotonic() >= deadline:
                raise LoadBalancerError(
                    f"haproxy: {self._backend}/{server} is {stat.status} "
                    f"({stat.check_status or 'no check'}) {self._health_timeout:g} s after it was "
                    "put back"
                )
            await asyncio.sleep(self._poll)
