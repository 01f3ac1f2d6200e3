"""``lock release --force`` refuses, before contacting any host, while this machine shows a
deployment of the group running."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.context import CliContext
from orchestrator.cli.main import cli
from orchestrator.models.inventory import parse_inventory
from orchestrator.state.locks import LocalLock

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
