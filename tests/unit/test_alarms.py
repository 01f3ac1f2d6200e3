"""Reading alarms: Prometheus's query API by recorded replies (the real server is in the
integration tests), commands by their exit."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.integrations.alarms import prometheus_reading, read_alarm
from orchestrator.models.traffic import CommandAlarm

# Recorded from Prometheus 2.42 (Debian's package), /api/v1/query.
EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
FIRING = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":'
    b'"app_errors_total","instance":"127.0.0.1:18091","job":"app"},"value":[1765065000.1,"3"]}]}}'
)
BAD_QUERY = (
    b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:5: '
    b'parse error: unclosed left parenthesis"}'
)


def test_an_empty_result_is_clear_and_a_series_is_an_alarm() -> None:
    assert prometheus_reading("errors", 200, EMPTY).active is False
    firing = prometheus_reading("errors", 200, FIRING)
    assert firing.active is True
    assert 'job="app"' in firing.detail and firing.detail.endswith("= 3")


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (400, BAD_QUERY, "bad_data"),
        (200, b"<html>proxy error</html>", "not JSON"),
        (200, b"[]", "not a query reply"),
        (200, json.dumps({"status": "success", "data": {}}).encode(), "no data.result"),
        (
            200,
            json.dumps(
                {"status": "success", "data": {"resultType": "string", "result": [0, "x"]}}
            ).encode(),
            "result type",
        ),
    ],
)
def test_a_reply_that_is_not_a_result_is_unreadable(status: int, body: bytes, said: str) -> None:
    reading = prometheus_reading("errors", status, body)
    assert reading.active is None and said in reading.detail


def test_a_scalar_is_an_alarm_unless_zero() -> None:
    scalar = b'{"status":"success","data":{"resultType":"scalar","result":[1,"%s"]}}'
    assert prometheus_reading("x", 200, scalar % b"0").active is False
    assert prometheus_reading("x", 200, scalar % b"2").active is True


@pytest.mark.parametrize(
    ("command", "active"), [("true", False), ("echo high; exit 2", True), ("sleep 30", None)]
)
def test_a_command_alarm_is_its_exit(command: str, active: bool | None) -> None:
    alarm = CommandAlarm(type="command", name="c", command=command, timeout=0.5)

    async def read() -> bool | None:
        async with httpx.AsyncClient() as client:
            return (await read_alarm(alarm, client)).active

    assert asyncio.run(read()) is active


def test_an_alarm_that_cannot_even_be_asked_is_unreadable_not_an_exception() -> None:
    from orchestrator.models.traffic import HttpAlarm

    alarm = HttpAlarm(type="http", name="typo", url="http://[::1")

    async def read() -> tuple[bool | None, str]:
        async with httpx.AsyncClient() as client:
            reading = await read_alarm(alarm, client)
        return reading.active, reading.detail

    active, detail = asyncio.run(read())
    assert active is None and "InvalidURL" in detail


def test_a_timed_out_command_ends_with_everything_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    alarm = CommandAlarm(
        type="command", name="slow", command=f"sleep 30 & echo $! > {pid_file}; wait", timeout=0.5
    )

    async def read() -> bool | None:
        async with httpx.AsyncClient() as client:
            return (await read_alarm(alarm, client)).active

    assert asyncio.run(read()) is None
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed with its session, and reaped by init
        for _ in range(50):  # bounded: the kill is sent before read_alarm returns
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0:
                raise ProcessLookupError
            time.sleep(0.1)
