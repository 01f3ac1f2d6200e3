"""Reading a deployment group's alarms (codedeploy-semantics §7.5): a command, an HTTP check, a
Prometheus query. Imported only for a group that has alarms (httpx costs a start-up that most
commands do not need). Each reading is in alarm, clear, or unreadable; what a deployment does with
that (stop, roll back, or ignore an unreadable one) is the stop source's business
(``orchestrator.engine`` polls it between lifecycle events).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from orchestrator.integrations.local_commands import run_local
from orchestrator.models.traffic import Alarm, CommandAlarm, HttpAlarm, PrometheusAlarm

MAX_DETAIL = 300  # characters of what a command printed or a server answered, in the reason
MAX_BODY = 1024 * 1024  # a Prometheus answer bigger than this is not read as a result


@dataclass(frozen=True)
class AlarmReading:
    name: str
    active: bool | None  # None: the alarm could not be read
    detail: str


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


async def read_command(alarm: CommandAlarm) -> AlarmReading:
    try:
        status, output = await run_local(["/bin/sh", "-c", alarm.command], alarm.timeout)
    except OSError as exc:
        return AlarmReading(alarm.name, None, f"cannot run: {exc}")
    if status is None:
        return AlarmReading(alarm.name, None, f"no answer in {alarm.timeout:g} s")
    said = _short(output)
    if status == 0:
        return AlarmReading(alarm.name, False, said)
    return AlarmReading(alarm.name, True, f"exit {status}" + (f": {said}" if said else ""))


async def read_http(alarm: HttpAlarm, client: httpx.AsyncClient) -> AlarmReading:
    try:
        response = await client.get(alarm.url, timeout=alarm.timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return AlarmReading(alarm.name, None, _short(f"{type(exc).__name__}: {exc}"))
    status = response.status_code
    return AlarmReading(alarm.name, not 200 <= status < 300, f"HTTP {status}")


def prometheus_reading(name: str, status: int, body: bytes) -> AlarmReading:
    """The reading of a reply of Prometheus's ``/api/v1/query`` (pure, for the recorded-reply
    tests): a non-empty result is an alarm, an error or anything else unreadable."""
    try:
        document = json.loads(body)
    except ValueError:
        return AlarmReading(
            name, None, f"HTTP {status}: not JSON: {_short(body.decode(errors='replace'))}"
        )
    if not isinstance(document, dict):
        return AlarmReading(name, None, f"HTTP {status}: not a query reply")
    if document.get("status") != "success":
        error = f"{document.get('errorType', 'error')}: {document.get('error', '')}"
        return AlarmReading(name, None, _short(f"HTTP {status}: {error}"))
    data = document.get("data")
    if not isinstance(data, dict) or "result" not in data:
        return AlarmReading(name, None, f"HTTP {status}: no data.result")
    result = data["result"]
    kind = data.get("resultType")
    if kind in ("vector", "matrix"):
        if not isinstance(result, list):
            return AlarmReading(name, None, f"HTTP {status}: data.result is not a list")
        if not result:
            return AlarmReading(name, False, "empty result")
        first = result[0] if isinstance(result[0], dict) else {}
        labels = first.get("metric", {})
        value = first.get("value", ["", "?"])
        shown = ",".join(f'{key}="{text}"' for key, text in sorted(labels.items()))
        return AlarmReading(
            name,
            True,
            _short(f"{len(result)} series, first {{{shown}}} = {value[-1] if value else '?'}"),
        )
    if kind == "scalar":  # a scalar is always one value: in alarm unless it is 0
        try:
            value = float(result[-1])
        except (TypeError, ValueError, IndexError, KeyError):
            return AlarmReading(name, None, f"HTTP {status}: a scalar that is not a number")
        return AlarmReading(name, value != 0, f"scalar {result[-1]}")
    return AlarmReading(name, None, f"HTTP {status}: result type {kind!r}")


async def read_prometheus(alarm: PrometheusAlarm, client: httpx.AsyncClient) -> AlarmReading:
    url = alarm.url.rstrip("/") + "/api/v1/query"
    try:
        async with client.stream(
            "GET", url, params={"query": alarm.query}, timeout=alarm.timeout
        ) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    return AlarmReading(alarm.name, None, f"answer over {MAX_BODY} bytes")
    except httpx.HTTPError as exc:
        return AlarmReading(alarm.name, None, _short(f"{type(exc).__name__}: {exc}"))
    return prometheus_reading(alarm.name, response.status_code, body)


async def read_alarm(alarm: Alarm, client: httpx.AsyncClient) -> AlarmReading:
    """The alarm's reading; anything that goes wrong reading it makes it unreadable, never an
    exception that would end the watch (and with it the deployment's protection)."""
    try:
        return await _read(alarm, client)
    except Exception as exc:  # an URL httpx refuses, a reply of an unexpected shape, ...
        return AlarmReading(alarm.name, None, _short(f"{type(exc).__name__}: {exc}"))


async def _read(alarm: Alarm, client: httpx.AsyncClient) -> AlarmReading:
    match alarm:
        case CommandAlarm():
            return await read_command(alarm)
        case HttpAlarm():
            return await read_http(alarm, client)
        case PrometheusAlarm():
            return await read_prometheus(alarm, client)
