"""``lock.sh`` under dash and busybox sh, in a runner as on a host: tombstones and their sweep,
locks an older orchestrator wrote, and who holds a lock that was lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.hostproto.replies import LockReply, parse_lock
from orchestrator.transport.base import ScriptCall
from tests.unit.host_programs import SHELLS, run_channel, run_one

pytestmark = pytest.mark.parametrize("sh", sorted(SHELLS))


def lock(
    sh: str, root: Path, mode: str, deployment: str, *extra: str, group: str = "g-1"
) -> LockReply:
    call = ScriptCall("lock", (mode, str(root), group, deployment, *extra))
    return parse_lock(run_one(sh, call))


def test_locks_taken_and_released_within_a_second_each_leave_their_own_tombstone(
    sh: str, tmp_path: Path
) -> None:
    """A group id of any characters: each lock's tombstone is its own, so the next release of
    the group in the same second is not refused for a tombstone already there."""
    group = 'g it\'s "q" $(id) \\b ü [x]* ~'
    for deployment in ("d-1", "d-2", "d-3"):
        taken = lock(sh, tmp_path, "acquire", deployment, "120", "holder=me", group=group)
        assert taken.state == "acquired", deployment
        assert lock(sh, tmp_path, "release", deployment, group=group).state == "released"
    assert len(list((tmp_path / "locks").glob(".gone.*"))) == 3


def test_a_released_lock_is_a_tombstone_until_swept(sh: str, tmp_path: Path) -> None:
    """Released: its tombstone (.gone.<token>) stays, so that no taker that read it can move the
    lock that follows; tombstones and unfinished locks an hour old go at the next release."""
    locks = tmp_path / "locks"
    assert lock(sh, tmp_path, "acquire", "d-1", "120", "holder=me").state == "acquired"
    token = (locks / "g-1" / "token").read_text().strip()
    now = int(time.time())
    for name, file, when in (
        (".gone.g-1.old", "gone", now - 4000),
        (".gone.g-1.recent", "gone", now - 60),
        (".new.g-1.abandoned", "heartbeat", now - 4000),
        (".new.g-1.building", "heartbeat", now),
    ):
        (locks / name).mkdir()
        (locks / name / file).write_text(f"{when}\n")
    assert lock(sh, tmp_path, "release", "d-1").state == "released"
    assert not (locks / "g-1").exists()
    assert (locks / f".gone.{token}" / "deployment").read_text() == "d-1\n"
    assert sorted(p.name for p in locks.iterdir()) == sorted(
        [f".gone.{token}", ".gone.g-1.recent", ".new.g-1.building"]
    )
    assert lock(sh, tmp_path, "acquire", "d-2", "120", "holder=me").state == "acquired"


def test_a_stale_lock_an_older_orchestrator_wrote_is_taken_over(sh: str, tmp_path: Path) -> None:
    old = tmp_path / "locks" / "g-1"
    old.mkdir(parents=True)
    (old / "holder").write_text("holder=ops@gone\npid=1\ndeployment=d-OLD\n")
    (old / "deployment").write_text("d-OLD\n")
    (old / "heartbeat").write_text("0\n")
    taken = lock(sh, tmp_path, "acquire", "d-2", "120", "holder=me")
    assert (taken.state, taken.holder.deployment) == ("took-over", "d-OLD")
    assert (tmp_path / "locks" / ".gone.g-1.legacy-0" / "deployment").read_text() == "d-OLD\n"
    assert (old / "deployment").read_text() == "d-2\n"


def test_a_lost_lock_names_who_holds_it_now(sh: str, tmp_path: Path) -> None:
    assert lock(sh, tmp_path, "acquire", "d-1", "120", "holder=first").state == "acquired"
    assert lock(sh, tmp_path, "break", "-").state == "broken"
    assert lock(sh, tmp_path, "acquire", "d-2", "120", "holder=second").state == "acquired"
    lost = lock(sh, tmp_path, "heartbeat", "d-1")
    assert (lost.state, lost.holder.deployment, lost.holder.holder) == (
        "lost",
        "d-2",
        "second",
    )
    assert lock(sh, tmp_path, "release", "d-1").state == "not-ours"
    assert lock(sh, tmp_path, "heartbeat", "d-2").state == "refreshed"
    assert not list((tmp_path / "locks" / "g-1").glob(".beat.*"))


def test_the_lock_keeps_the_hosts_time_in_a_runner_and_on_a_channel(
    sh: str, tmp_path: Path
) -> None:
    """Heartbeats are written by the runner (its one reading of the clock plus the uptime) and on
    channels of their own (`date`): both in seconds since the epoch, or a lock's age is
    nonsense. busybox's date has no %N: the runner read it as seconds where it wanted
    hundredths, and a stale lock there aged a hundred times too slowly."""
    before = int(time.time())
    assert lock(sh, tmp_path, "acquire", "d-1", "120", "holder=me").state == "acquired"
    by_runner = int((tmp_path / "locks" / "g-1" / "heartbeat").read_text())
    beat = run_channel(sh, ScriptCall("lock", ("heartbeat", str(tmp_path), "g-1", "d-1")))
    assert parse_lock(beat).state == "refreshed"
    on_channel = int((tmp_path / "locks" / "g-1" / "heartbeat").read_text())
    after = int(time.time())
    assert before - 1 <= by_runner <= after + 1
    assert before - 1 <= on_channel <= after + 1
