"""``lock release --force`` refuses, before contacting any host, while this machine shows a
deployment of the group running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import control
from orchestrator.cli.context import CliContext
from orchestrator.cli.main import cli
from orchestrator.models.inventory import parse_inventory
from orchestrator.models.results import Deployment, RevisionInfo, Status
from orchestrator.state.base import open_store
from orchestrator.state.locks import LocalLock
from orchestrator.state.process import ProcessIdentity

INVENTORY = (
    "hosts:\n  web-1: {address: 127.0.0.1, port: 1, tags: {role: web}}\n"
    "applications:\n  hello:\n    deployment_groups:\n      web: {tag_sets: [[{key: role}]]}\n"
)


def test_a_held_local_lock_is_left_alone_and_kill_needs_the_deployment_in_the_history(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    group_id = parse_inventory(INVENTORY).group_id("hello", "web")
    state = os.environ["ORCHESTRATOR_STATE"]
    held = LocalLock(CliContext(inventory, True, state).state_dir, group_id, "hello/web")
    held.acquire("d-HERE00001")
    base = ["-i", str(inventory), "lock", "release", "-a", "hello", "-g", "web", "--force"]
    try:
        refused = CliRunner().invoke(cli, base)
        killed = CliRunner().invoke(cli, [*base, "--kill"])
    finally:
        held.release()
    assert refused.exit_code == 7, refused.output
    assert "deployment d-HERE00001 of hello/web runs on this machine" in refused.stderr
    assert refused.stdout == ""  # no host contacted, no table
    assert killed.exit_code == 2, killed.output
    assert "does not show it running here" in killed.stderr
    assert killed.stdout == ""


def test_kill_leaves_the_locks_of_a_holder_that_outlives_sigkill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder still there after SIGKILL (uninterruptible I/O): its locks are its own still,
    exit 7 and no host contacted. This test process plays the holder; its signals are caught."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    inv = parse_inventory(INVENTORY)
    group_id = inv.group_id("hello", "web")
    state = os.environ["ORCHESTRATOR_STATE"]
    store = open_store(state)
    deployment = Deployment(
        "d-UNKILLABL",
        "hello",
        "web",
        group_id,
        RevisionInfo("src", "f" * 64, 1, "directory", None),
        "CodeDeployDefault.OneAtATime",
    )
    deployment.status = Status.IN_PROGRESS
    store.save(deployment)  # recorded under this very process
    store.close()
    sent: list[signal.Signals] = []
    monkeypatch.setattr(ProcessIdentity, "send", lambda _self, signum: sent.append(signum) or True)
    monkeypatch.setattr(control, "KILL_WAIT", 0.2)
    held = LocalLock(CliContext(inventory, True, state).state_dir, group_id, "hello/web")
    held.acquire("d-UNKILLABL")
    base = ["-i", str(inventory), "lock", "release", "-a", "hello", "-g", "web", "--force"]
    try:
        killed = CliRunner().invoke(cli, [*base, "--kill", "--wait", "0"])
    finally:
        held.release()
    assert signal.SIGKILL in sent
    assert killed.exit_code == 7, killed.output
    assert "still runs" in killed.stderr
    assert "its locks are left in place" in killed.stderr
    assert killed.stdout == ""  # no host contacted, no table
