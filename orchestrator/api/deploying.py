"""Deployments from Python: ``deploy``, ``rollback``, ``sync`` and ``resume``.

Each loads and checks everything before any host is contacted (``ConfigError`` for bad input),
takes the group's locks, runs the deployment and, when it fails and automatic rollback is on, its
rollback; it returns when all that has ended, with the ``Deployment`` records. Progress goes to
the event sinks the caller passes (and to the history store, always); nothing is printed, no
signal handler is installed and nothing exits. Stop a running deployment through a
``DeploymentControl`` (``api/control.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.api.control import DeploymentControl
from orchestrator.api.options import (
    DeployOptions,
    outside_event_loop,
    recorded_rules,
    with_bundle_store,
)
from orchestrator.api.settings import Settings
from orchestrator.engine.release import Release, ReleasePolicy, Releaser, cached_revision
from orchestrator.engine.rollout import Rollout
from orchestrator.engine.stopping import STORE_READ_INTERVAL, StoreStop
from orchestrator.engine.traffic import LoadBalancerFactory
from orchestrator.errors import InvalidRequest, NotInHistory, RollbackImpossible
from orchestrator.events import EventSink, Notice
from orchestrator.hostproto.holder import LockHolder
from orchestrator.install_plan import plan_for
from orchestrator.integrations.load_balancers import load_balancer_for
from orchestrator.integrations.webhooks import WebhookSink
from orchestrator.limits import require_open_files
from orchestrator.models.deployment_config import DeploymentConfig, DeploymentRules
from orchestrator.models.groups import DeploymentGroup
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import Inventory, load_inventory
from orchestrator.models.results import Deployment, RevisionInfo, Status, new_deployment_id
from orchestrator.revision import Revision, build_revision
from orchestrator.selection import selected_hosts
from orchestrator.state.base import open_store
from orchestrator.templates import rendered_for

if TYPE_CHECKING:
    from orchestrator.integrations.alarm_watch import AlarmWatch

InventoryArg = Inventory | str | os.PathLike[str]


@dataclass
class Outcome:
    """What a deployment call produced."""

    deployment: Deployment
    rollback: Deployment | None = None  # the automatic rollback it triggered, if any
    notes: list[str] = field(default_factory=list)  # for the operator: no rollback because...
    failure: str | None = None  # a sink that failed (a full disk): why the deployment stopped


def load_revision(spec: str, settings: Settings | None = None) -> Revision:
    """Build and fully check a revision, its install plan included (``ConfigError``)."""
    revision = build_revision(spec, (settings or Settings()).bundle_cache)
    plan_for(revision, "DISALLOW")
    return revision


def deploy(
    inventory: InventoryArg,
    application: str,
    group: str,
    revision: Revision | str,
    *,
    options: DeployOptions | None = None,
    settings: Settings | None = None,
    sinks: Sequence[EventSink] = (),
    control: DeploymentControl | None = None,
) -> Outcome:
    """Deploy ``revision`` (built, or a directory, archive or ``git:REPO@REF``) to the group."""
    outside_event_loop("deploy")
    options, settings = options or DeployOptions(), settings or Settings()
    loaded = _inventory(inventory)
    revision = revision if isinstance(revision, Revision) else load_revision(revision, settings)
    rollout = new_rollout(loaded, application, group, revision, options)
    return _release(rollout, loaded, options, settings, sinks, control)


def rollback(
    inventory: InventoryArg,
    application: str,
    group: str,
    *,
    to: str | None = None,
    options: DeployOptions | None = None,
    settings: Settings | None = None,
    sinks: Sequence[EventSink] = (),
    control: DeploymentControl | None = None,
) -> Outcome:
    """Redeploy the group's last successful revision (or deployment ``to``'s) to all its hosts,
    from the bundle cache. ``RollbackImpossible`` when there is none."""
    outside_event_loop("rollback")
    options, settings = options or DeployOptions(), settings or Settings()
    loaded = _inventory(inventory)
    previous, revision = earlier_revision(settings, application, group, to, "roll back to")
    rollout = new_rollout(
        loaded,
        application,
        group,
        revision,
        options,
        creator="rollback",
        rollback_info={
            "rollbackMessage": f"manual rollback to the revision of {previous.deployment_id}"
        },
        behavior=previous.file_exists_behavior,
    )
    return _release(rollout, loaded, options, settings, sinks, control)


def sync(
    inventory: InventoryArg,
    application: str,
    group: str,
    *,
    options: DeployOptions | None = None,
    settings: Settings | None = None,
    sinks: Sequence[EventSink] = (),
    control: DeploymentControl | None = None,
) -> Outcome:
    """Deploy the group's last successful revision to the hosts that do not have it."""
    outside_event_loop("sync")
    options = replace(options or DeployOptions(), update_outdated_only=True)
    settings = settings or Settings()
    loaded = _inventory(inventory)
    previous, revision = earlier_revision(settings, application, group, None, "sync hosts to")
    rollout = new_rollout(
        loaded,
        application,
        group,
        revision,
        options,
        creator="sync",
        behavior=previous.file_exists_behavior,
    )
    return _release(rollout, loaded, options, settings, sinks, control)


def resume(
    deployment_id: str,
    inventory: InventoryArg,
    *,
    options: DeployOptions | None = None,
    settings: Settings | None = None,
    sinks: Sequence[EventSink] = (),
    control: DeploymentControl | None = None,
) -> Outcome:
    """Complete a deployment whose process died, under the rules it recorded when it started
    (records from before those were kept: the inventory's config of the recorded name)."""
    outside_event_loop("resume")
    options, settings = options or DeployOptions(), settings or Settings()
    with closing(open_store(settings.state)) as store:
        recorded, location = store.get(deployment_id), store.location
    if recorded is None:
        raise NotInHistory(f"no deployment {deployment_id} in the history")
    if not recorded.interrupted:
        state = "still running" if recorded.status == Status.IN_PROGRESS else recorded.status
        raise InvalidRequest(f"deployment {deployment_id} was not interrupted: it is {state}")
    known_rules = recorded_rules(recorded, location)
    recorded.interrupted = False  # it is no longer, once it runs again
    loaded = _inventory(inventory)
    application, group = recorded.application, recorded.group
    revision = cached_revision(
        settings.bundle_cache, recorded.revision.sha256, recorded.revision.source
    )
    hosts = selected_hosts(loaded, application, group)
    if known_rules is not None:
        rules = known_rules
    else:  # recorded before the rules were: the inventory's config of its name, as then
        config_name = loaded.config_name_for(application, group, recorded.config_name)
        rules = _rules(loaded.deployment_config(config_name), options)
    missing = sorted(set(recorded.targets) - {host.name for host in hosts})
    if missing:
        raise InvalidRequest(
            f"the inventory no longer selects {', '.join(missing)} for {application}/{group}"
        )
    rollout = build_rollout(
        recorded,
        revision,
        rules,
        [host for host in hosts if host.name in recorded.targets],
        loaded.group(application, group),
        resume=True,
        load_balancer=load_balancer_for(loaded, application, group),
    )
    return _release(rollout, loaded, options, settings, sinks, control)


def earlier_revision(
    settings: Settings, application: str, group: str, deployment_id: str | None, purpose: str
) -> tuple[Deployment, Revision]:
    """A deployment from the history (the named one, else the group's last successful) and its
    revision from the bundle cache."""
    with closing(open_store(settings.state)) as store:
        previous = (
            store.get(deployment_id) if deployment_id else store.last_successful(application, group)
        )
    if previous is None:
        raise RollbackImpossible(
            f"no deployment {deployment_id}"
            if deployment_id
            else f"{application}/{group} has no successful deployment to {purpose}"
        )
    revision = cached_revision(
        settings.bundle_cache, previous.revision.sha256, previous.revision.source
    )
    return previous, revision


def _inventory(inventory: InventoryArg) -> Inventory:
    return inventory if isinstance(inventory, Inventory) else load_inventory(Path(inventory))


def _rules(config: DeploymentConfig, options: DeployOptions) -> DeploymentRules:
    return DeploymentRules(config, options.hook_kill_grace, options.update_outdated_only)


def new_rollout(
    inventory: Inventory,
    application: str,
    group: str,
    revision: Revision,
    options: DeployOptions,
    *,
    creator: str = "user",
    rollback_info: dict[str, Any] | None = None,
    behavior: str | None = None,
) -> Rollout:
    """A new deployment, everything checked and planned before any host is contacted."""
    group_spec = inventory.group(application, group)
    hosts = selected_hosts(inventory, application, group)
    config = inventory.deployment_config(
        inventory.config_name_for(application, group, options.config_name)
    )
    behavior = behavior or (
        revision.appspec.model.file_exists_behavior
        or options.file_exists_behavior
        or group_spec.file_exists_behavior
        or "DISALLOW"
    )
    plan_for(revision, behavior)  # a conflict is a ConfigError before the deployment exists
    rules = _rules(config, options)
    deployment = Deployment(
        deployment_id=new_deployment_id(),
        application=application,
        group=group,
        group_id=inventory.group_id(application, group),
        revision=RevisionInfo(
            revision.source, revision.sha256, revision.size, revision.kind, revision.commit
        ),
        config_name=config.name,
        creator=creator,
        description=options.description,
        file_exists_behavior=behavior,
        ignore_application_stop_failures=options.ignore_application_stop_failures
        or group_spec.ignore_application_stop_failures,
        rollback_info=rollback_info,
        rules=rules.to_document(),
    )
    return build_rollout(
        deployment,
        revision,
        rules,
        hosts,
        group_spec,
        load_balancer=load_balancer_for(inventory, application, group),
    )


def build_rollout(
    deployment: Deployment,
    revision: Revision,
    rules: DeploymentRules,
    hosts: Sequence[HostSpec],
    group: DeploymentGroup,
    *,
    resume: bool = False,
    load_balancer: LoadBalancerFactory | None = None,
) -> Rollout:
    """The one place the API makes the engine's ``Rollout``."""
    return Rollout(
        deployment,
        revision,
        plan_for(revision, deployment.file_exists_behavior),
        rules.config,
        hosts,
        rules.hook_grace,
        update_outdated_only=rules.update_outdated_only,
        resume=resume,
        lock_holder=LockHolder.here(),
        group=group,
        load_balancer=load_balancer,
        rendered=rendered_for(revision, hosts, deployment),
    )


def _policy(
    inventory: Inventory, application: str, group: str, options: DeployOptions
) -> ReleasePolicy:
    settings = inventory.group(application, group).auto_rollback
    return ReleasePolicy(
        auto_rollback=settings.enabled if options.auto_rollback is None else options.auto_rollback,
        rollback_on_failure="DEPLOYMENT_FAILURE" in settings.events,
        rollback_on_stop="DEPLOYMENT_STOP_ON_REQUEST" in settings.events,
        rollback_on_alarm="DEPLOYMENT_STOP_ON_ALARM" in settings.events,
        lock_wait=options.lock_wait or 0.0,
    )


def _release(
    rollout: Rollout,
    inventory: Inventory,
    options: DeployOptions,
    settings: Settings,
    sinks: Sequence[EventSink],
    control: DeploymentControl | None,
) -> Outcome:
    """Run the release: the deployment, and the rollback it may trigger."""
    application, group = rollout.deployment.application, rollout.deployment.group
    from orchestrator.transport.ssh_limits import descriptors_for  # noqa: PLC0415 - asyncssh

    require_open_files(descriptors_for(rollout.hosts), len(rollout.hosts))
    policy = _policy(inventory, application, group, options)
    group_spec = inventory.group(application, group)
    rollout = with_bundle_store(rollout, group_spec, options)
    webhooks = WebhookSink(group_spec.triggers)
    with closing(open_store(settings.state)) as store:
        stored = StoreStop(store)
        watch = None
        if group_spec.alarms:
            from orchestrator.integrations.alarm_watch import alarm_watch_for  # noqa: PLC0415

            watch = alarm_watch_for(group_spec, rollout.deployment.deployment_id)
        releaser = Releaser(
            store,
            settings.transport(compress=rollout.bundle_store is not None),
            [store, *sinks, *([webhooks] if group_spec.triggers else [])],
            settings.bundle_cache,
            stops=[stored, *([watch] if watch else [])],
        )
        release = asyncio.run(_run(releaser, rollout, policy, stored, webhooks, control, watch))
    return Outcome(
        release.deployment,
        release.rollback,
        [*release.notes, *webhooks.problems],
        release.failure,
    )


async def _run(
    releaser: Releaser,
    rollout: Rollout,
    policy: ReleasePolicy,
    stored: StoreStop,
    webhooks: WebhookSink,
    control: DeploymentControl | None,
    watch: AlarmWatch | None = None,
) -> Release:
    if control is not None:
        control.attach(releaser, stored)
    watching = None
    if watch is not None:
        deployment = rollout.deployment
        watching = asyncio.create_task(
            watch.run(releaser.control.wake, lambda text: releaser.sinks(Notice(deployment, text)))
        )
        await watch.first_reading()  # an alarm active now stops it before any host is touched
    # No SIGUSR1 reaches a program using the API (a handler is the program's own business), so
    # `orchestrator stop` from elsewhere is seen by polling the store about once a second.
    ticker = asyncio.create_task(_wake_regularly(releaser))
    try:
        return await releaser.run(rollout, policy)
    finally:
        ticker.cancel()
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        if control is not None:
            control.detach()
        await webhooks.drain()


async def _wake_regularly(releaser: Releaser) -> None:
    while True:
        await asyncio.sleep(STORE_READ_INTERVAL)
        releaser.control.wake()
