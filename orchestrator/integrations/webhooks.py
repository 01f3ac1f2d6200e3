"""Deployment group triggers (DESIGN §5): a JSON POST to each trigger's URL on the events it names.

The payloads are those of CodeDeploy's trigger notifications (epoch seconds as strings), with
``region`` and ``accountId`` null: there is no AWS account. The event's name travels in the
``X-Orchestrator-Event`` header. A payload is built when the engine emits the event (its
objects keep changing) and sent by a task of the trigger's own, in order (a receiver sees a
DeploymentStart before anything else of that deployment), so a slow receiver never holds up the
deployment; a trigger that cannot be sent is a note for the operator, never a failed deployment.
Header values may name environment variables as ``${VAR}``: expanded when sent, never shown.

The POSTs are httpx's on the event loop, not urllib's in threads: a coroutine can be cancelled
where it waits, a thread cannot, so a receiver answering one byte at a time can hold neither a
POST past its ``send_timeout`` nor the end of the process past the ``drain`` deadline. Redirects
are never followed: a 3xx would carry the trigger's headers, credentials and all, to wherever it
points.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, assert_never
from urllib.parse import urljoin, urlsplit

from orchestrator.events import (
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostUnreachable,
    LifecycleEventFinished,
    LifecycleEventStarted,
    Notice,
    TargetFinished,
    TargetStarted,
    ZoneBaking,
)
from orchestrator.models.groups import Trigger
from orchestrator.models.results import Deployment, Status, Target
from orchestrator.models.text import shown
from orchestrator.models.webhook_text import header_value_problem

if TYPE_CHECKING:
    import httpx

SEND_TIMEOUT = 10.0  # seconds for one POST, from connecting to the end of the answer's headers
DRAIN_TIMEOUT = 30.0  # seconds the end of a release waits for what is still queued
LET_GO_TIMEOUT = 2.0  # seconds for cancelled POSTs and the client to close, after either
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FINISHED = {
    Status.SUCCEEDED: "DeploymentSuccess",
    Status.FAILED: "DeploymentFailure",
    Status.STOPPED: "DeploymentStop",
}
_TARGET_FINISHED = {Status.SUCCEEDED: "InstanceSuccess", Status.FAILED: "InstanceFailure"}
_MAX_SHOWN = 300  # characters of what a receiver or an exception says, in a note
_MIN_SECRET = 4  # shorter values are not masked in notes: masking `1` would garble every number


def trigger_events(event: Event) -> list[str]:
    """The trigger event types an engine event stands for."""
    match event:
        case DeploymentStarted():
            rollback = event.deployment.creator == "rollback"
            return ["DeploymentStart", *(["DeploymentRollback"] if rollback else [])]
        case DeploymentFinished():
            name = _FINISHED.get(event.deployment.status)
            return [name] if name else []
        case TargetStarted():
            return ["InstanceStart"]
        case TargetFinished():
            name = _TARGET_FINISHED.get(event.target.status)
            return [name] if name else []
        case HostUnreachable():
            return ["InstanceFailure"]
        case LifecycleEventStarted() | LifecycleEventFinished() | Notice() | ZoneBaking():
            return []
        case _:
            assert_never(event)


def _payload(trigger: str, event: Event) -> dict[str, Any]:
    """A host's events notify about that host, the others about the deployment."""
    match event:
        case TargetStarted() | TargetFinished() | HostUnreachable():
            return instance_payload(trigger, event.deployment, event.target)
        case (
            DeploymentStarted()
            | DeploymentFinished()
            | LifecycleEventStarted()
            | LifecycleEventFinished()
            | Notice()
            | ZoneBaking()
        ):
            return deployment_payload(trigger, event.deployment)
        case _:
            assert_never(event)


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
            for status in (
                Status.FAILED,
                Status.IN_PROGRESS,
                Status.PENDING,
                Status.SKIPPED,
                Status.SUCCEEDED,
            )
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
    """The URL's origin alone, for messages: its credentials, query and path may all hold a
    secret (chat services put their token in the path). Never raises: it names URLs that could
    not be sent to, too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be parsed)"
    return shown(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}")


def expand_headers(trigger: Trigger, environ: Mapping[str, str]) -> dict[str, str] | str:
    """The trigger's headers with ``${VAR}`` read from ``environ``; or why they cannot be sent,
    naming the header and the variable, never the value."""
    headers = {}
    for name, text in trigger.headers.items():
        unset = [v for v in _VARIABLE.findall(text) if v not in environ]
        if unset:
            return f"${{{unset[0]}}} is not set"
        for variable in _VARIABLE.findall(text):
            problem = header_value_problem(environ[variable])
            if problem is not None:
                return f"header {name}: ${{{variable}}} {problem}"
        value = _VARIABLE.sub(lambda match: environ[match.group(1)], text)
        problem = header_value_problem(value)
        if problem is not None:  # the inventory checked the text: only an odd value gets here
            return f"header {name} {problem}"
        # Spaces or tabs at either end are no part of a header's value (RFC 9110) and h11
        # refuses them, with the value in its message.
        headers[name] = value.strip(" \t")
    return headers


class WebhookSink:
    """An event sink that queues a POST per matching trigger; ``drain`` waits for them.

    Nothing here raises into the engine or out of ``drain``: every failure, foreseen or not,
    becomes a line of ``problems``, so the deployment's outcome and exit code are its own."""

    label = "the deployment group's triggers"

    def __init__(
        self,
        triggers: list[Trigger],
        environ: Mapping[str, str] | None = None,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.triggers = triggers
        self.environ = os.environ if environ is None else environ
        self.send_timeout = send_timeout
        self.problems: list[str] = []
        # One queue and one sender per trigger: in order for each receiver, all at once across.
        self._queues: list[asyncio.Queue[tuple[str, bytes]]] = []
        self._senders: list[asyncio.Task[None]] = []
        self._unsent = [0 for _ in triggers]  # queued or being sent, per trigger
        self._client: httpx.AsyncClient | None = None

    def __call__(self, event: Event) -> None:
        try:
            self._queue_for(event)
        except Exception as exc:  # a bug here must not stop the deployment
            self.problems.append(
                f"trigger notifications of {type(event).__name__} not sent: "
                f"unexpected {type(exc).__name__}: {self._foreign(exc)}"
            )

    def _queue_for(self, event: Event) -> None:
        for name in trigger_events(event):
            for index, trigger in enumerate(self.triggers):
                if name not in trigger.events:
                    continue
                self._enqueue(index, name, json.dumps(_payload(trigger.name, event)).encode())

    def _enqueue(self, index: int, name: str, body: bytes) -> None:
        if not self._queues:
            loop = asyncio.get_running_loop()  # outside one, fails before anything is made
            queues: list[asyncio.Queue[tuple[str, bytes]]] = [
                asyncio.Queue() for _ in self.triggers
            ]
            self._senders = [
                loop.create_task(self._sender(index, queue)) for index, queue in enumerate(queues)
            ]
            self._queues = queues
        self._queues[index].put_nowait((name, body))
        self._unsent[index] += 1

    async def _sender(self, index: int, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        trigger = self.triggers[index]
        while True:
            name, body = await queue.get()
            try:
                problem = await self._send(trigger, name, body)
            except Exception as exc:  # unforeseen: a note like any other failure
                problem = (
                    f"trigger {trigger.name}: {name} to {where(trigger.url)} failed: "
                    f"unexpected {type(exc).__name__}: {self._foreign(exc)}"
                )
            finally:
                self._unsent[index] -= 1
                queue.task_done()
            if problem is not None:
                self.problems.append(problem)

    async def _send(self, trigger: Trigger, name: str, body: bytes) -> str | None:
        """POST one notification; why it failed, or None."""
        said = f"trigger {trigger.name}: {name} to {where(trigger.url)}"
        headers = expand_headers(trigger, self.environ)
        if isinstance(headers, str):
            return f"{said} not sent: {headers}"
        import httpx  # noqa: PLC0415 - deferred on purpose, see _open_client

        try:
            client = self._open_client()
            request = client.build_request(
                "POST",
                trigger.url,
                content=body,
                # Latin-1, as HTTP/1.1 carries it (httpx would encode a str as ASCII).
                headers={
                    key.encode("ascii"): value.encode("latin-1")
                    for key, value in _with_defaults(headers, name).items()
                },
            )
            # The whole POST, not each read: a receiver answering a byte at a time meets every
            # read timeout and would otherwise never be given up.
            async with asyncio.timeout(self.send_timeout):
                response = await client.send(request, stream=True)
                # The answer's body is never read: what it says changes nothing.
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return f"{said} failed: no complete answer within {self.send_timeout:g} s"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return f"{said} failed: {self._foreign(exc)}"
        if response.is_success:
            return None
        status = f"HTTP {response.status_code} {self._foreign(response.reason_phrase)}".rstrip()
        if response.is_redirect:
            target = self._foreign(where(urljoin(trigger.url, response.headers["Location"])))
            return f"{said} failed: {status}, redirected to {target} (redirects are not followed)"
        return f"{said} failed: {status}"

    def _open_client(self) -> httpx.AsyncClient:
        if self._client is None:
            # httpx and ssl are imported at the first POST: start-up time that every rollout
            # would pay, most of them with no trigger at all.
            import ssl  # noqa: PLC0415 - deferred on purpose

            import httpx  # noqa: PLC0415 - deferred on purpose

            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(self.send_timeout),
                # The system's trust store, as urllib had it (httpx's default is certifi's).
                verify=ssl.create_default_context(),
            )
        return self._client

    def _foreign(self, what: object) -> str:
        """What an exception or a receiver said, for a note: on one line, not too long, and
        without any header value, variable's value or URL part that may be a secret, since such
        text is not ours to vouch for (h11, for one, quotes a header value it refuses)."""
        text = str(what) or type(what).__name__
        for secret in sorted(self._secrets(), key=len, reverse=True):
            for form in {secret, secret.strip(), shown(secret), repr(secret)[1:-1]}:
                if len(form) >= _MIN_SECRET:
                    text = text.replace(form, "***")
        text = shown(text)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."

    def _secrets(self) -> list[str]:
        found = []
        for trigger in self.triggers:
            for text in trigger.headers.values():
                found.append(text)
                for variable in _VARIABLE.findall(text):
                    with contextlib.suppress(Exception):  # an environment may fail to read
                        found.append(self.environ[variable])
            with contextlib.suppress(ValueError):
                parts = urlsplit(trigger.url)
                found += [parts.query, parts.fragment, parts.netloc.rpartition("@")[0]]
                found += [segment for segment in parts.path.split("/") if segment]
        return found

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait at most ``timeout`` seconds for the queued POSTs, then drop what is left (said in
        ``problems``). Returns within ``timeout`` + 2 x LET_GO_TIMEOUT whatever the receivers do,
        and never raises."""
        if not self._queues:
            return
        try:
            await self._drain(timeout)
        except Exception as exc:
            self.problems.append(
                f"trigger notifications: unexpected {type(exc).__name__} at the end: "
                f"{self._foreign(exc)}"
            )

    async def _drain(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout)
        except TimeoutError:
            for trigger, unsent in zip(self.triggers, self._unsent, strict=True):
                if unsent:
                    self.problems.append(
                        f"trigger {trigger.name}: {unsent} notification{'s' if unsent > 1 else ''}"
                        f" not sent: the {timeout:g} s deadline after the deployment passed"
                    )
        for sender in self._senders:
            sender.cancel()
        # A cancelled POST closes its connection; bounded all the same.
        await asyncio.wait(self._senders, timeout=LET_GO_TIMEOUT)
        if self._client is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._client.aclose(), LET_GO_TIMEOUT)


def _with_defaults(headers: dict[str, str], event: str) -> dict[str, str]:
    """The trigger's headers and ours; one the trigger sets replaces ours, whatever its case."""
    ours = {
        "Content-Type": "application/json",
        "User-Agent": "orchestrator",
        "X-Orchestrator-Event": event,
    }
    theirs = {name.lower() for name in headers}
    return {**{k: v for k, v in ours.items() if k.lower() not in theirs}, **headers}
