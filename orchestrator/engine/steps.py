"""Each host's lifecycle as data: the steps a deployment runs on every host, in order.

``build_steps`` makes them from the revision's appspec and the deployment group (pure). Each
step is the lifecycle event it is recorded as and what runs it: the revision's scripts for the
event (``Hooks``), the last successful install's (``PreviousHooks``), the bundle's upload
(``DownloadBundle``), the install plan (``Install``) or the group's load balancer
(``BlockTraffic``, ``AllowTraffic``). The in-place lifecycle without a load balancer (DESIGN §5)
has no traffic events, their hooks included, as in CodeDeploy; a group with one gets all six, and
the host's loop (``engine/host.py``) runs whatever it is given, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.models.appspec import (
    LIFECYCLE_EVENTS,
    PREVIOUS_REVISION_EVENTS,
    TRAFFIC_EVENTS,
    AppSpec,
    HookScript,
)
from orchestrator.models.groups import DeploymentGroup


@dataclass(frozen=True)
class Hooks:
    """The revision's scripts for ``event``, in the appspec's order (none: a no-op)."""

    event: str
    scripts: tuple[HookScript, ...]


@dataclass(frozen=True)
class PreviousHooks:
    """The last successful install's scripts for ``event`` (a no-op on a first deployment).
    ``--ignore-application-stop-failures`` deploys past their failure, as in CodeDeploy."""

    event: str


@dataclass(frozen=True)
class DownloadBundle:
    """The bundle, uploaded unless the host already has it."""

    event: str = "DownloadBundle"


@dataclass(frozen=True)
class Install:
    """The install plan the controller computed, executed on the host."""

    event: str = "Install"


@dataclass(frozen=True)
class BlockTraffic:
    """The host taken out of the load balancer, drained, before ApplicationStop."""

    event: str = "BlockTraffic"


@dataclass(frozen=True)
class AllowTraffic:
    """The host put back into the load balancer; done once it is seen healthy."""

    event: str = "AllowTraffic"


Step = Hooks | PreviousHooks | DownloadBundle | Install | BlockTraffic | AllowTraffic


def build_steps(appspec: AppSpec, group: DeploymentGroup | None = None) -> tuple[Step, ...]:
    """Every host's steps for a revision with ``appspec`` deployed to ``group``: the traffic
    events only when the group has a load balancer."""
    balanced = group is not None and group.load_balancer is not None
    steps: list[Step] = []
    for event in LIFECYCLE_EVENTS:
        if event in TRAFFIC_EVENTS and not balanced:
            continue
        if event == "DownloadBundle":
            steps.append(DownloadBundle())
        elif event == "Install":
            steps.append(Install())
        elif event == "BlockTraffic":
            steps.append(BlockTraffic())
        elif event == "AllowTraffic":
            steps.append(AllowTraffic())
        elif event in PREVIOUS_REVISION_EVENTS:
            steps.append(PreviousHooks(event))
        else:
            steps.append(Hooks(event, tuple(appspec.model.hooks.for_event(event))))
    return tuple(steps)


def unused_traffic_hooks(appspec: AppSpec, group: DeploymentGroup | None) -> list[str]:
    """Warnings for the appspec's hooks on traffic events that will not run: in CodeDeploy they
    run only when the group has a load balancer (``group`` None: not known to have one)."""
    if group is not None and group.load_balancer is not None:
        return []
    where = ": this deployment group has none" if group else ""
    warnings = []
    for event in sorted(TRAFFIC_EVENTS, key=LIFECYCLE_EVENTS.index):
        scripts = appspec.model.hooks.for_event(event)
        if scripts:
            line = appspec.document.line_of(("hooks", event))
            at = f"{appspec.file}:{line}" if line is not None else appspec.file
            warnings.append(
                f"{at}: hooks.{event}: {len(scripts)} script(s) that run only in a deployment "
                f"group with a load_balancer{where}"
            )
    return warnings
