"""The hosts a deployment group selects, and whether each can be reached: ``hosts --check``.

``check_hosts`` connects to every selected host as a deployment would (its SSH settings, its
ssh_config, host keys checked as the inventory says, at most ``Settings.max_handshakes``
handshakes at once), runs ``echo ok`` and reports each, never raising for one host: an
unreachable host is a ``HostCheck`` with its error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from orchestrator.api.deploying import InventoryArg, _inventory
from orchestrator.api.options import outside_event_loop
from orchestrator.api.settings import Settings, ssh_transport
from orchestrator.errors import HostError
from orchestrator.limits import raise_file_limit
from orchestrator.models.hosts import HostSpec
from orchestrator.selection import selected_hosts


@dataclass(frozen=True)
class HostCheck:
    """One host's answer: ``host`` as ssh_config resolved it, ``error`` None when it answered,
    and how long connecting and answering took."""

    host: HostSpec
    error: str | None
    seconds: float

    @property
    def reachable(self) -> bool:
        return self.error is None


def check_hosts(
    inventory: InventoryArg, application: str, group: str, settings: Settings | None = None
) -> list[HostCheck]:
    """Every host the group selects, in deployment order, each connected to and asked
    ``echo ok``. Blocks; call it from a thread when an event loop runs."""
    outside_event_loop("check_hosts")
    settings = settings or Settings()
    hosts = selected_hosts(_inventory(inventory), application, group)
    return asyncio.run(_check(hosts, settings))


async def _check(hosts: list[HostSpec], settings: Settings) -> list[HostCheck]:
    raise_file_limit()  # a connection each, up to all of them at once
    transport = ssh_transport(settings.max_handshakes, settings.accept_new_file)()

    async def check(host: HostSpec) -> HostCheck:
        started = time.monotonic()
        try:
            session = await transport.connect(host)
            host = session.host  # where ssh_config took it
            try:
                result = await session.run("echo ok", timeout=host.ssh.connect_timeout)
            finally:
                await session.close()
            ok = result.ok and result.stdout.strip() == "ok"
            error = None if ok else f"'echo ok' gave {result}"
        except HostError as exc:
            error = exc.message
        return HostCheck(host, error, time.monotonic() - started)

    try:
        return await asyncio.gather(*(check(host) for host in hosts))
    finally:
        await transport.close()
