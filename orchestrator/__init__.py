"""orchestrator: agentless SSH rollouts with AWS CodeDeploy's semantics.

The public API, for programs that embed orchestrator instead of calling its command line (the
deployment calls are those of ``orchestrator.api``, which the command line itself calls). Each
name is imported when first used: the models bring pydantic (about 0.3 s), which the commands
that only read the history (`status`, `history`, `logs`) never need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.api import (
        DeploymentControl,
        DeployOptions,
        Outcome,
        Settings,
        deploy,
        history,
        logs,
        resume,
        rollback,
        status,
        stop,
        sync,
    )
    from orchestrator.errors import (
        AppSpecError,
        ConfigError,
        ConfigIssue,
        HostError,
        InventoryError,
        OrchestratorError,
        RevisionError,
    )
    from orchestrator.models.appspec import AppSpec, parse_appspec
    from orchestrator.models.deployment_config import PREDEFINED, DeploymentConfig
    from orchestrator.models.hosts import HostSpec
    from orchestrator.models.inventory import Inventory, load_inventory, parse_inventory
    from orchestrator.models.results import Deployment, LifecycleEvent, Target
    from orchestrator.planning import Scheduler, TargetInfo, simulate
    from orchestrator.revision import Revision, build_revision
    from orchestrator.selection import select_hosts

__version__ = "0.1.0"

_HOMES = {
    "orchestrator.api": (
        "DeployOptions",
        "DeploymentControl",
        "Outcome",
        "Settings",
        "deploy",
        "history",
        "logs",
        "resume",
        "rollback",
        "status",
        "stop",
        "sync",
    ),
    "orchestrator.errors": (
        "AppSpecError",
        "ConfigError",
        "ConfigIssue",
        "HostError",
        "InventoryError",
        "OrchestratorError",
        "RevisionError",
    ),
    "orchestrator.models.appspec": ("AppSpec", "parse_appspec"),
    "orchestrator.models.deployment_config": ("PREDEFINED", "DeploymentConfig"),
    "orchestrator.models.hosts": ("HostSpec",),
    "orchestrator.models.inventory": ("Inventory", "load_inventory", "parse_inventory"),
    "orchestrator.models.results": ("Deployment", "LifecycleEvent", "Target"),
    "orchestrator.planning": ("Scheduler", "TargetInfo", "simulate"),
    "orchestrator.revision": ("Revision", "build_revision"),
    "orchestrator.selection": ("select_hosts",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "PREDEFINED",
    "AppSpec",
    "AppSpecError",
    "ConfigError",
    "ConfigIssue",
    "DeployOptions",
    "Deployment",
    "DeploymentConfig",
    "DeploymentControl",
    "HostError",
    "HostSpec",
    "Inventory",
    "InventoryError",
    "LifecycleEvent",
    "OrchestratorError",
    "Outcome",
    "Revision",
    "RevisionError",
    "Scheduler",
    "Settings",
    "Target",
    "TargetInfo",
    "__version__",
    "build_revision",
    "deploy",
    "history",
    "load_inventory",
    "logs",
    "parse_appspec",
    "parse_inventory",
    "resume",
    "rollback",
    "select_hosts",
    "simulate",
    "status",
    "stop",
    "sync",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
