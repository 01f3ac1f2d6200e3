"""The host lock under contention: the real ``lock.sh``, run as a host runs it (under dash with
GNU tools, and under busybox sh with busybox's applets only), by processes that start together.

Each round plants a stale lock (heartbeat 0; every other round one an older orchestrator wrote,
without a token) and starts two takers at once: exactly one of them may end up holding it. The
rounds run in one shell loop, so that a round costs the programs' forks and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import parse_lock
from orchestrator.hostproto.scripts import channel_program
from orchestrator.lab.toolbox import busybox
from tests.unit.host_programs import shell

# Under dash 500 rounds; busybox sh (the same program, applets that fork less) half as many.
ROUNDS = {"dash": 500, "busybox": 250}
WON = ("acquired", "took-over")

# race PROGRAM ROUNDS BASE SECRET: ROUNDS rounds, each in BASE/<round>.
RACE = r"""
prog=$1 rounds=$2 base=$3 secret=$4
i=0
while [ $i -lt "$rounds" ]; do
    lock=$base/$i/locks/g
    mkdir -p "$lock"
    printf 'holder=gone\ndeployment=d-OLD\n' > "$lock/holder"
    echo d-OLD > "$lock/deployment"
    echo 0 > "$lock/heartbeat"
    if [ $((i % 2)) = 0 ]; then echo "g.old$i" > "$lock/token"; fi
    printf '%s\n' "$secret" | $SHELL_COMMAND -c "$prog" lock acquire "$base/$i" g d-A 120 holder=A > "$base/$i/A" &
    printf '%s\n' "$secret" | $SHELL_COMMAND -c "$prog" lock acquire "$base/$i" g d-B 120 holder=B > "$base/$i/B" &
    wait
    i=$((i + 1))
done
"""


def _environment(sh: str, tmp_path: Path) -> dict[str, str]:
    """The PATH a host of that kind has, and the runner's reading of the clock."""
    path = os.environ["PATH"]
    if sh == "busybox":
        path = str(busybox(tmp_path / "busybox-bin"))
    with open("/proc/uptime", encoding="ascii") as uptime:
        up = float(uptime.read().split()[0])
    clock = int((time.time() - up) * 100)
    return {
        "PATH": path,
        "SHELL_COMMAND": " ".join(shell(sh)),
        "ORCHESTRATOR_CLOCK": str(clock),
    }


@pytest.mark.parametrize("sh", ["dash", "busybox"])
def test_two_takers_of_a_stale_lock_never_both_win(sh: str, tmp_path: Path) -> None:
    secret = framing.new_secret()
    base = tmp_path / "rounds"
    command = shell(sh)
    executable = shutil.which(command[0])
    assert executable is not None
    subprocess.run(
        [
            executable,
            *command[1:],
            "-c",
            RACE,
            "race",
            channel_program("lock"),
            str(ROUNDS[sh]),
            str(base),
            secret,
        ],
        env=_environment(sh, tmp_path),
        check=True,
        timeout=600,
    )
    twice = []
    for i in range(ROUNDS[sh]):
        answers = {}
        for taker in "AB":
            reply = (base / str(i) / taker).read_bytes()
            answers[taker] = parse_lock(framing.channel_result(0, reply, b"", secret))
        winners = [taker for taker, answer in answers.items() if answer.state in WON]
        states = sorted(answer.state for answer in answers.values())
        if len(winners) != 1 or "held" not in states:
            twice.append((i, states))
            continue
        locks = base / str(i) / "locks"
        # The lock in place is the winner's, whole; the loser left nothing behind.
        assert (locks / "g" / "deployment").read_text() == f"d-{winners[0]}\n", i
        assert f"holder={winners[0]}" in (locks / "g" / "holder").read_text(), i
        assert (locks / "g" / "token").is_file(), i
        assert not list(locks.glob(".new.*")), i
    assert not twice, f"{len(twice)} of {ROUNDS[sh]} rounds without exactly one winner: {twice[:5]}"
