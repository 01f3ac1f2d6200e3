"""The hook supervisor's clock: dates computed by sh arithmetic, without a fork of `date`."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from orchestrator.hostproto.scripts import program


def _function(text: str, name: str) -> str:
    match = re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.S | re.M)
    assert match, f"{name} not found"
    return match.group(0)


def _sh_dates(seconds: list[int]) -> list[str]:
    script = _function(program("supervise"), "utc_iso")
    script += 'for t in "$@"; do utc_iso "$t"; echo "$now"; done\n'
    shell = shutil.which("dash") or "sh"
    done = subprocess.run(
        [shell, "-c", script, "sh", *map(str, seconds)], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_utc_iso_agrees_with_the_calendar() -> None:
    edges = [
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        for year in (1970, 1999, 2000, 2024, 2026, 2038, 2100, 2400)
        for month, day in ((1, 1), (2, 28), (3, 1), (12, 31))
        for hour, minute, second in ((0, 0, 0), (23, 59, 59), (9, 5, 7))
    ]
    edges += [datetime(year, 2, 29, 12, tzinfo=UTC) for year in (2000, 2024, 2400)]
    rng = random.Random(0)
    seconds = [int(d.timestamp()) for d in edges]
    seconds += [rng.randrange(0, 253402300800) for _ in range(2000)]  # up to 9999-12-31
    expected = [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in seconds]
    assert _sh_dates(seconds) == expected


@pytest.mark.parametrize("uptime", ["0.05", "7.00", "1234.09", "98765.99"])
def test_utc_now_adds_the_uptime_to_the_runners_reading(uptime: str) -> None:
    """The runner's clock reading + the uptime; a fraction like 09 is not read as octal."""
    supervise = program("supervise")
    script = _function(supervise, "utc_now") + _function(supervise, "utc_iso")
    centiseconds = int(uptime.replace(".", ""))
    epoch = int(datetime(2026, 11, 26, 15, 4, 5, tzinfo=UTC).timestamp())
    clock = epoch * 100 + 42 - centiseconds  # the runner read 15:04:05.42 at this uptime
    # /proc/uptime replaced by a file of the test's: the function reads whatever is there.
    script = script.replace("/proc/uptime", '"$UPTIME_FILE"') + 'utc_now; echo "$now"\n'
    setup = f'UPTIME_FILE=$(mktemp); echo "{uptime} 1.0" > "$UPTIME_FILE"; clock={clock}\n'
    done = subprocess.run(
        ["sh", "-c", setup + script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.stdout == "2026-11-26T15:04:05Z\n"
