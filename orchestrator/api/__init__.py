"""orchestrator's library API: what the command line does, for Python programs.

``deploy``, ``rollback``, ``sync`` and ``resume`` run a deployment and return its ``Deployment``
record (in an ``Outcome``, with the automatic rollback it triggered and notes); ``stop`` asks one
that another process runs to stop; ``status``, ``history`` and ``logs`` read the history;
``migrate_state`` and ``copy_state`` upgrade a store's schema and copy a history into another store.
Inputs are an inventory (a path or a loaded ``Inventory``), ``DeployOptions`` and ``Settings``
(where the history and the bundle cache are). Errors are those of ``orchestrator.errors``; nothing
prints, exits or installs a signal handler. Each name is imported when first used, so that reading
the history does not import the models or asyncssh.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.api.control import DeploymentControl
    from orchestrator.api.deploying import (
        Outcome,
        deploy,
        earlier_revision,
        load_revision,
        resume,
        rollback,
        sync,
    )
    from orchestrator.api.hosts import HostCheck, check_hosts
    from orchestrator.api.options import DeployOptions
    from orchestrator.api.records import (
        StopRequested,
        history,
        logs,
        request_stop,
        status,
        stop,
        wait_stopped,
    )
    from orchestrator.api.settings import Settings
    from orchestrator.api.state import copy_state, migrate_state
    from orchestrator.selection import selected_hosts

_HOMES = {
    "orchestrator.api.control": ("DeploymentControl",),
    "orchestrator.api.deploying": (
        "Outcome",
        "check_hosts",
        "deploy",
        "earlier_revision",
        "load_revision",
        "resume",
        "rollback",
        "sync",
    ),
    "orchestrator.api.hosts": ("HostCheck", "check_hosts"),
    "orchestrator.api.options": ("DeployOptions",),
    "orchestrator.api.records": (
        "StopRequested",
        "history",
        "logs",
        "request_stop",
        "status",
        "stop",
        "wait_stopped",
    ),
    "orchestrator.api.settings": ("Settings",),
    "orchestrator.api.state": ("copy_state", "migrate_state"),
    "orchestrator.selection": ("selected_hosts",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "DeployOptions",
    "DeploymentControl",
    "HostCheck",
    "Outcome",
    "Settings",
    "StopRequested",
    "check_hosts",
    "copy_state",
    "deploy",
    "earlier_revision",
    "history",
    "load_revision",
    "logs",
    "migrate_state",
    "request_stop",
    "resume",
    "rollback",
    "selected_hosts",
    "status",
    "stop",
    "sync",
    "wait_stopped",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
