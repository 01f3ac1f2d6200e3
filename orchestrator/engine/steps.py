"""Each host's lifecycle as data: the steps a deployment runs on every host, in order.

``build_steps`` makes them from the revision's appspec and the deployment group (pure). Each
step is the lifecycle event it is recorded as and what runs it: the revision's scripts for the
event (``Hooks``), the last successful install's (``PreviousHooks``), the bundle's upload
(``DownloadBundle``) or the install plan (``Install``). The in-place lifecycle without a load
balancer (DESIGN §5) has no traffic events; a group's load balancer adds its traffic steps here,
and the host's loop (``engine/host.py``) runs whatever it is given, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.models.appspec import (
    LIFECYCLE_EVENTS,
    PREVIOUS_REVISION_EVENTS,
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


Step = Hooks | PreviousHooks | DownloadBundle | Install


def build_steps(appspec: AppSpec, group: DeploymentGroup | None = None) -> tuple[Step, ...]:
    """Every host's steps for a revision with ``appspec`` deployed to ``group``. The group has
    no load balancer yet, so no traffic event is among them."""
    steps: list[Step] = []
    for event in LIFECYCLE_EVENTS:
        if "Traffic" in event:
            continue
        if event == "DownloadBundle":
            steps.append(DownloadBundle())
        elif event == "Install":
            steps.append(Install())
        elif event in PREVIOUS_REVISION_EVENTS:
            steps.append(PreviousHooks(event))
        else:
            steps.append(Hooks(event, tuple(appspec.model.hooks.for_event(event))))
    return tuple(steps)
