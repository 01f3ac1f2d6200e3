"""What the traffic events talk to: the deployment group's load balancer (codedeploy-semantics
§3.1). BlockTraffic takes a host out of it (drained: its sessions end, or a timeout passes)
before ApplicationStop; AllowTraffic puts it back and returns once the load balancer sees it
healthy. The implementations are integrations (``orchestrator.integrations.load_balancers``):
the engine knows only this interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from orchestrator.engine.outcome import StepOutcome
from orchestrator.errors import LoadBalancerError
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Diagnostics
from orchestrator.transport.base import Transport


class LoadBalancer(Protocol):
    async def block(self, host: HostSpec) -> str:
        """Take ``host`` out and wait until it is drained; what happened, for the event's log.
        Raise ``LoadBalancerError`` (or a ``HostError`` reaching it) when that fails."""
        ...

    async def allow(self, host: HostSpec) -> str:
        """Put ``host`` back and wait until the load balancer sees it healthy."""
        ...

    async def close(self) -> None:
        """Let go of what it holds (a connection to the host its commands run on)."""
        ...


# A deployment makes its load balancer from the transport it connects to hosts with: a balancer
# driven by commands on an inventory host reaches that host the same way.
LoadBalancerFactory = Callable[[Transport], LoadBalancer]


class TrafficCall:
    """One host's BlockTraffic or AllowTraffic: a call to the load balancer that waits (for the
    sessions to drain, for the health check) up to the balancer's own timeout, and that
    stop --force ends at once (``abort``). ``out_of_balancer`` is the deployment's set of hosts
    taken out and not put back: a host joins it with the first command of BlockTraffic (from
    then on it may be out) and leaves it when AllowTraffic succeeds."""

    def __init__(
        self, balancer: LoadBalancer, host: HostSpec, block: bool, out_of_balancer: set[str]
    ) -> None:
        self.balancer = balancer
        self.host = host
        self.block = block
        self.out_of_balancer = out_of_balancer
        self.task: asyncio.Task[str] | None = None
        self.aborted = False

    @staticmethod
    def not_run(block: bool) -> StepOutcome:
        return _failed(f"not run: the deployment was stopped with --force before {_doing(block)}")

    async def run(self) -> StepOutcome:
        if self.block:
            self.out_of_balancer.add(self.host.name)
        call = self.balancer.block(self.host) if self.block else self.balancer.allow(self.host)
        self.task = asyncio.ensure_future(call)
        try:
            said = await self.task
        except LoadBalancerError as exc:
            return _failed(str(exc))
        except asyncio.CancelledError:
            if not self.aborted:
                raise  # the host's run itself was cancelled, not this wait by stop --force
            return _failed(f"stopped with --force while {_doing(self.block)}")
        if not self.block:
            self.out_of_balancer.discard(self.host.name)
        return StepOutcome(True, output=f"{said}\n")

    def abort(self) -> None:
        if self.task is not None and not self.task.done():
            self.aborted = True
            self.task.cancel()


def _doing(block: bool) -> str:
    return "taking the host out of the load balancer" if block else "putting it back"


def _failed(message: str) -> StepOutcome:
    return StepOutcome(False, Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message))
