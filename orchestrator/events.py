"""Typed events the engine emits; renderers, the history store and the NDJSON file subscribe.

The engine never prints: it calls every sink with every event, in order, from its one task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.models.results import Deployment, LifecycleEvent, Target


@dataclass(frozen=True)
class DeploymentStarted:
    deployment: Deployment


@dataclass(frozen=True)
class HostUnreachable:
    deployment: Deployment
    target: Target
    message: str


@dataclass(frozen=True)
class TargetStarted:
    deployment: Deployment
    target: Target


@dataclass(frozen=True)
class LifecycleEventStarted:
    deployment: Deployment
    target: Target
    event: LifecycleEvent


@dataclass(frozen=True)
class LifecycleEventFinished:
    deployment: Deployment
    target: Target
    event: LifecycleEvent


@dataclass(frozen=True)
class TargetFinished:
    deployment: Deployment
    target: Target


@dataclass(frozen=True)
class ZoneBaking:
    deployment: Deployment
    zone: str
    seconds: int


@dataclass(frozen=True)
class Notice:
    """Something an operator should know that is not a failure (a lock taken over, a stop)."""

    deployment: Deployment
    message: str
    host: str | None = None


@dataclass(frozen=True)
class DeploymentFinished:
    deployment: Deployment


Event = (
    DeploymentStarted
    | HostUnreachable
    | TargetStarted
    | LifecycleEventStarted
    | LifecycleEventFinished
    | TargetFinished
    | ZoneBaking
    | Notice
    | DeploymentFinished
)
EventSink = Callable[[Event], None]


def event_record(event: Event) -> dict[str, Any]:
    """One line of the NDJSON event stream (``rollout --events FILE``)."""
    record: dict[str, Any] = {
        "type": type(event).__name__,
        "deploymentId": event.deployment.deployment_id,
    }
    if isinstance(event, DeploymentFinished):
        record["deployment"] = event.deployment.to_document(with_targets=False)
    if isinstance(
        event,
        HostUnreachable
        | TargetStarted
        | LifecycleEventStarted
        | LifecycleEventFinished
        | TargetFinished,
    ):
        record["host"] = event.target.host
        record["targetStatus"] = event.target.status
    if isinstance(event, HostUnreachable):
        record["message"] = event.message
    if isinstance(event, LifecycleEventStarted | LifecycleEventFinished):
        record["lifecycleEvent"] = event.event.to_document()
    if isinstance(event, Notice):
        record.update(message=event.message, host=event.host)
    if isinstance(event, ZoneBaking):
        record.update(zone=event.zone, seconds=event.seconds)
    return record
