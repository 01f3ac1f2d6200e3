"""A deployment's spec: everything it needs, checked before any host is contacted.

A ``Rollout`` never changes once made; how a running one is steered (its stop sources, which
deployments have ended) is its ``Control`` (``engine/stopping.py``), and what it did is its
``Deployment`` record and the runner's own state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.engine.bundles import BundleStore
from orchestrator.engine.traffic import LoadBalancerFactory
from orchestrator.hostproto.holder import LockHolder
from orchestrator.install_plan import InstallPlan
from orchestrator.models.deployment_config import DeploymentConfig
from orchestrator.models.groups import DeploymentGroup
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Deployment
from orchestrator.revision import Revision

HOOK_GRACE_SECONDS = 10.0
LOCK_TTL_SECONDS = 120


@dataclass(frozen=True)
class Rollout:
    """Everything a deployment needs, validated before any host is contacted."""

    deployment: Deployment  # the record the engine fills in as it runs
    revision: Revision
    plan: InstallPlan
    config: DeploymentConfig
    hosts: Sequence[HostSpec]
    hook_grace: float = HOOK_GRACE_SECONDS
    update_outdated_only: bool = False
    resume: bool = False  # continue an interrupted deployment from what the hosts report
    lock_ttl: int = LOCK_TTL_SECONDS
    lock_holder: LockHolder = field(default_factory=LockHolder)  # who takes the hosts' locks
    group: DeploymentGroup | None = None  # the inventory's group: what its steps depend on
    load_balancer: LoadBalancerFactory | None = None  # the group's, for its traffic events
    # Each host's rendered templates, the tar it unpacks before Install (``templates.py``).
    rendered: Mapping[str, bytes] = field(default_factory=dict)
    bundle_store: BundleStore | None = None  # hosts fetch the bundle from it; None: pushed
