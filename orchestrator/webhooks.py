"""Deployment group triggers (DESIGN §5): a JSON POST to each trigger's URL on the events it names.

The payloads are those of CodeDeploy's trigger notifications (epoch seconds as strings), with
``region`` and ``accountId`` null: there is no AWS account. The event's name travels in the
``X-Orchestrator-Event`` header. A payload is built when the engine emits the event (its
objects keep changing) and sent by a task of the trigger's own, in order (a receiver sees a
DeploymentStart before anything else of that deployment), so a slow receiver never holds up the
deployment; a trigger that cannot be sent is a note for the operator, never a failed deployment.
Header values may name environment variables as ``${VAR}``: expanded when sent, never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import urllib.error
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    TargetFinished,
    TargetStarted,
)
from orchestrator.models.inventory import Trigger
from orchestrator.models.results import (
    FAILED,
    IN_PROGRESS,
    PENDING,
    SKIPPED,
    STOPPED,
    SUCCEEDED,
    Deployment,
    Target,
)

SEND_TIMEOUT = 10.0  # seconds for one POST
DRAIN_TIMEOUT = 30.0  # seconds the end of a release waits for what is still queued
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FINISHED = {SUCCEEDED: "DeploymentSuccess", FAILED: "DeploymentFailure", STOPPED: "DeploymentStop"}
_TARGET_FINISHED = {SUCCEEDED: "InstanceSuccess", FAILED: "InstanceFailure"}


def trigger_events(event: Event) -> list[str]:
    """The trigger event types an engine event stands for."""
    if isinstance(event, DeploymentStarted):
        rollback = event.deployment.creator == "rollback"
        return ["DeploymentStart", *(["DeploymentRollback"] if rollback else [])]
    if isinstance(event, DeploymentFinished):
        name = _FINISHED.get(event.deployment.status)
        return [name] if name else []
    if isinstance(event, TargetStarted):
        return ["InstanceStart"]
    if isinstance(event, TargetFinished):
        name = _TARGET_FINISHED.get(event.target.status)
        return [name] if name else []
    if isinstance(event, HostUnreachable):
        return ["InstanceFailure"]
    return []


def _status(status: str) -> str:
    """CodeDeploy's spelling in notifications: InProgress -> IN_PROGRESS."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", status).upper()


def _seconds(value: float | None) -> str | None:
    return None if value is None else str(int(value))


def deployment_payload(trigger: str, deployment: Deployment) -> dict[str, Any]:
    overview = deployment.overview()
    error = (
        {"ErrorCode": deployment.error_code, "ErrorMessage": deployment.error_message or ""}
        if deployment.error_code
        else None
    )
    return {
        "region": None,
        "accountId": None,
        "eventTriggerName": trigger,
        "deploymentId": deployment.deployment_id,
        "applicationName": deployment.application,
        "deploymentGroupName": deployment.group,
        "createTime": _seconds(deployment.create_time),
        "completeTime": _seconds(deployment.complete_time),
        "deploymentOverview": {
            status: str(overview.get(status, 0))
            for status in (FAILED, IN_PROGRESS, PENDING, SKIPPED, SUCCEEDED)
        },
        "status": _status(deployment.status),
        "errorInformation": error,
        "rollbackInformation": deployment.rollback_info,
    }


def instance_payload(trigger: str, deployment: Deployment, target: Target) -> dict[str, Any]:
    times = [t for e in target.events for t in (e.start_time, e.end_time) if t is not None]
    return {
        "region": None,
        "accountId": None,
        "eventTriggerName": trigger,
        "deploymentId": deployment.deployment_id,
        "instanceId": target.host,
        "lastUpdatedAt": _seconds(max(times)) if times else None,
        "instanceStatus": target.status,
        "lifecycleEvents": [
            {
                "LifecycleEvent": e.name,
                "LifecycleEventStatus": e.status,
                "StartTime": _seconds(e.start_time),
                "EndTime": _seconds(e.end_time),
            }
            for e in target.events
        ],
    }


def where(url: str) -> str:
    """The URL without its query or credentials, for messages (either may hold a secret)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def expand_headers(trigger: Trigger, environ: Mapping[str, str]) -> dict[str, str]:
    """``${VAR}`` in header values from ``environ``; KeyError names a variable that is unset."""

    def value(match: re.Match[str]) -> str:
        return environ[match.group(1)]

    return {name: _VARIABLE.sub(value, text) for name, text in trigger.headers.items()}


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    # Imported at the first POST: urllib.request brings http.client and the email package,
    # start-up that every rollout would pay, most of them with no trigger at all.
    import urllib.request  # noqa: PLC0415 - deferred on purpose

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:  # noqa: S310
        response.read()


class WebhookSink:
    """An event sink that queues a POST per matching trigger; ``drain`` waits for them."""

    label = "the deployment group's triggers"

    def __init__(self, triggers: list[Trigger], environ: Mapping[str, str] | None = None) -> None:
        self.triggers = triggers
        self.environ = os.environ if environ is None else environ
        self.problems: list[str] = []
        # One queue and one sender per trigger: in order for each receiver, all at once across.
        self._queues: list[asyncio.Queue[tuple[str, bytes]]] = []
        self._senders: list[asyncio.Task[None]] = []

    def __call__(self, event: Event) -> None:
        for name in trigger_events(event):
            for index, trigger in enumerate(self.triggers):
                if name not in trigger.events:
                    continue
                if isinstance(event, TargetStarted | TargetFinished | HostUnreachable):
                    payload = instance_payload(trigger.name, event.deployment, event.target)
                else:
                    payload = deployment_payload(trigger.name, event.deployment)
                self._enqueue(index, name, json.dumps(payload).encode())

    def _enqueue(self, index: int, name: str, body: bytes) -> None:
        if not self._queues:
            self._queues = [asyncio.Queue() for _ in self.triggers]
            self._senders = [
                asyncio.create_task(self._sender(trigger, queue))
                for trigger, queue in zip(self.triggers, self._queues, strict=True)
            ]
        self._queues[index].put_nowait((name, body))

    async def _sender(self, trigger: Trigger, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        while True:
            name, body = await queue.get()
            try:
                await self._send(trigger, name, body)
            finally:
                queue.task_done()

    async def _send(self, trigger: Trigger, name: str, body: bytes) -> None:
        said = f"trigger {trigger.name}: {name} to {where(trigger.url)}"
        try:
            headers = expand_headers(trigger, self.environ)
        except KeyError as missing:
            self.problems.append(f"{said} not sent: ${{{missing.args[0]}}} is not set")
            return
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "orchestrator",
            "X-Orchestrator-Event": name,
            **headers,
        }
        try:
            await asyncio.to_thread(_post, trigger.url, body, headers)
        except urllib.error.HTTPError as exc:
            self.problems.append(f"{said} failed: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            self.problems.append(f"{said} failed: {reason}")

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait (bounded) for the queued POSTs; what is left is said in ``problems``."""
        if not self._queues:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout)
        except TimeoutError:
            left = sum(q.qsize() for q in self._queues)
            self.problems.append(
                f"trigger notifications not sent within {timeout:g} s: {left} still queued"
            )
        for sender in self._senders:
            sender.cancel()
        for sender in self._senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
