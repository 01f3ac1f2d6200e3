"""orchestrator: agentless SSH rollouts with AWS CodeDeploy's semantics.

The public API, for programs that embed orchestrator instead of calling its command line.
"""

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
from orchestrator.models.inventory import HostSpec, Inventory, load_inventory, parse_inventory
from orchestrator.planning import Scheduler, TargetInfo, simulate
from orchestrator.revision import Revision, build_revision
from orchestrator.selection import select_hosts

__version__ = "0.1.0"

__all__ = [
    "PREDEFINED",
    "AppSpec",
    "AppSpecError",
    "ConfigError",
    "ConfigIssue",
    "DeploymentConfig",
    "HostError",
    "HostSpec",
    "Inventory",
    "InventoryError",
    "OrchestratorError",
    "Revision",
    "RevisionError",
    "Scheduler",
    "TargetInfo",
    "__version__",
    "build_revision",
    "load_inventory",
    "parse_appspec",
    "parse_inventory",
    "select_hosts",
    "simulate",
]
