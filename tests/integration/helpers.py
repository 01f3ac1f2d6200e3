"""Running commands on lab hosts through orchestrator's own SSH transport."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import HostSpec, load_inventory
from orchestrator.transport.base import CommandResult
from orchestrator.transport.ssh import SshLimits, SshTransport

NO_RETRY = SshLimits(connect_retries=0)


def host_spec(lab: Lab, name: str, **ssh_changes: Any) -> HostSpec:
    spec = load_inventory(lab.inventory_path).resolve_host(name)
    if ssh_changes:
        spec = dataclasses.replace(spec, ssh=dataclasses.replace(spec.ssh, **ssh_changes))
    return spec


def run_on(host: HostSpec, command: str, transport: SshTransport | None = None) -> CommandResult:
    async def go() -> CommandResult:
        session = await (transport or SshTransport(NO_RETRY)).connect(host)
        try:
            return await session.run(command, timeout=30)
        finally:
            await session.close()

    return asyncio.run(go())
