"""Typed events the engine emits; renderers, the history store and the NDJSON file subscribe.

The engine never prints: it calls every sink with every event, in order, from its one task.
Every sink dispatches on ``Event`` with ``match`` ending in ``assert_never``, so a new event type
that a sink forgets fails the type check there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, assert_never

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


def sink_name(sink: EventSink) -> str:
    """What a sink writes to, for messages: its ``label`` when it has one."""
    return str(getattr(sink, "label", None) or type(sink).__name__)


class Broadcast:
    """Every event to every sink, in order.

    A sink that raises (the history store or a log on a full disk, a closed stderr) is dropped
    and its failure kept; the listeners are told once, so the deployment can stop: what it did
    next could be neither recorded nor shown. The other sinks still get every event.
    """

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = list(sinks)
        self.failure: str | None = None
        self.listeners: list[Callable[[str], None]] = []

    def __call__(self, event: Event) -> None:
        failed: list[str] = []
        for sink in tuple(self.sinks):
            try:
                sink(event)
            except Exception as exc:  # whatever a sink raises, the rollout goes on
                self.sinks.remove(sink)
                failed.append(f"cannot write {sink_name(sink)}: {exc}")
        if failed and self.failure is None:
            self.failure = "; ".join(failed)
            for listener in self.listeners:
                listener(self.failure)


def event_record(event: Event) -> dict[str, Any]:
    """One line of the NDJSON event stream (``rollout --events FILE``)."""
    record: dict[str, Any] = {
        "type": type(event).__name__,
        "deploymentId": event.deployment.deployment_id,
    }
    match event:
        case DeploymentStarted():
            pass
        case DeploymentFinished():
            record["deployment"] = event.deployment.to_document(with_targets=False)
        case HostUnreachable():
            record.update(_target_fields(event.target), message=event.message)
        case TargetStarted() | TargetFinished():
            record.update(_target_fields(event.target))
        case LifecycleEventStarted() | LifecycleEventFinished():
            record.update(_target_fields(event.target), lifecycleEvent=event.event.to_document())
        case Notice():
            record.update(message=event.message, host=event.host)
        case ZoneBaking():
            record.update(zone=event.zone, seconds=event.seconds)
        case _:
            assert_never(event)
    return record


def _target_fields(target: Target) -> dict[str, Any]:
    return {"host": target.host, "targetStatus": target.status}
