"""The deployment group's load balancer, made from its inventory entry (``models/traffic.py``):
HAProxy through its runtime API (``haproxy.py``), or two commands for anything else.

A ``command`` balancer runs ``block`` or ``allow`` as a shell command whose ``$1`` and ``$2`` are
the host's inventory name and address (``sh -c COMMAND sh NAME ADDRESS``: nothing is pasted into
the command text), on the controller or, with ``run_on``, on an inventory host over SSH as its
user (one connection for the deployment, made again if it drops). The command does its own
waiting (drained, healthy) and succeeds with exit 0; ``timeout`` bounds it, and on the
controller ends everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex

from orchestrator.engine.traffic import LoadBalancer, LoadBalancerFactory
from orchestrator.errors import HostError, LoadBalancerError
from orchestrator.integrations.haproxy import HAProxy, RuntimeApi
from orchestrator.integrations.local_commands import run_local
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import Inventory
from orchestrator.models.traffic import CommandBalancer, HAProxyBalancer
from orchestrator.transport.base import HostSession, Transport

MAX_SAID = 2000  # characters of a command's output kept in the event's log or diagnostics


class HAProxyLoadBalancer:
    def __init__(self, spec: HAProxyBalancer) -> None:
        self._spec = spec
        self._haproxy = HAProxy(
            RuntimeApi(spec.runtime_api),
            spec.backend,
            drain_timeout=spec.drain_timeout,
            health_timeout=spec.health_timeout,
        )

    async def block(self, host: HostSpec) -> str:
        return await self._haproxy.block(self._spec.server_name(host.name))

    async def allow(self, host: HostSpec) -> str:
        return await self._haproxy.allow(self._spec.server_name(host.name))

    async def close(self) -> None:
        return None


def _said(output: str) -> str:
    output = output.strip()
    return output if len(output) <= MAX_SAID else "..." + output[-MAX_SAID:]


class CommandLoadBalancer:
    def __init__(
        self, spec: CommandBalancer, transport: Transport, run_on: HostSpec | None
    ) -> None:
        self._spec = spec
        self._transport = transport
        self._run_on = run_on
        self._session: HostSession | None = None
        self._connecting = asyncio.Lock()

    async def block(self, host: HostSpec) -> str:
        return await self._run("block", self._spec.block, host)

    async def allow(self, host: HostSpec) -> str:
        return await self._run("allow", self._spec.allow, host)

    async def _run(self, what: str, command: str, host: HostSpec) -> str:
        arguments = (host.name, host.address or host.name)
        where = "the controller" if self._run_on is None else self._run_on.name
        if self._run_on is None:
            status, output = await self._locally(command, arguments)
        else:
            status, output = await self._remotely(command, arguments)
        if status != 0:
            said = _said(output)
            raise LoadBalancerError(
                f"load balancer {what} command on {where} "
                + ("timed out" if status is None else f"exited {status}")
                + (f": {said}" if said else "")
            )
        return _said(output) or f"{what}: done on {where}"

    async def _locally(self, command: str, arguments: tuple[str, str]) -> tuple[int | None, str]:
        try:
            return await run_local(["/bin/sh", "-c", command, "sh", *arguments], self._spec.timeout)
        except OSError as exc:
            raise LoadBalancerError(f"cannot run the load balancer command: {exc}") from exc

    async def _remotely(self, command: str, arguments: tuple[str, str]) -> tuple[int | None, str]:
        assert self._run_on is not None
        line = " ".join(shlex.quote(part) for part in ("/bin/sh", "-c", command, "sh", *arguments))
        try:
            async with self._connecting:
                if self._session is None:
                    self._session = await self._transport.connect(self._run_on)
            result = await self._session.run(line, timeout=self._spec.timeout)
        except TimeoutError:
            return None, ""
        except HostError as exc:
            self._session = None  # the next host's command connects again
            raise LoadBalancerError(
                f"load balancer host {self._run_on.name}: {exc.message}"
            ) from exc
        return result.exit_status, result.stdout + result.stderr

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(HostError):
                await self._session.close()
            self._session = None


def load_balancer_for(
    inventory: Inventory, application: str, group: str
) -> LoadBalancerFactory | None:
    """The factory a deployment of ``group`` makes its load balancer with, or None without one."""
    spec = inventory.group(application, group).load_balancer
    if spec is None:
        return None
    if isinstance(spec, HAProxyBalancer):
        haproxy = spec
        return lambda transport: HAProxyLoadBalancer(haproxy)
    command = spec
    run_on = None if spec.run_on == "controller" else inventory.resolve_host(spec.run_on)

    def make(transport: Transport) -> LoadBalancer:
        return CommandLoadBalancer(command, transport, run_on)

    return make
