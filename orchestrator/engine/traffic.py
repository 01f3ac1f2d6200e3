"""What the traffic events talk to: the deployment group's load balancer (codedeploy-semantics
§3.1). BlockTraffic takes a host out of it (drained: its sessions end, or a timeout passes)
before ApplicationStop; AllowTraffic puts it back and returns once the load balancer sees it
healthy. The implementations are integrations (``orchestrator.integrations.load_balancers``):
the engine knows only this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orchestrator.models.hosts import HostSpec
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
