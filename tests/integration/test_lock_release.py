"""``lock release --force`` and a deployment that runs on this machine, against real sshd hosts."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from orchestrator.state.base import open_store
from tests.integration.helpers import start_waiting_rollout

GO = "/srv/go-release"


def test_release_refuses_a_live_holder_unless_told_to_kill_it(
    small_lab: Lab, tmp_path: Path
) -> None:
    """A rollout runs (web-1 in its AfterInstall): `lock release --force` names it, exits 7 and
    leaves every lock as it is; with --kill the rollout is stopped (its hook terminated, exit 6,
    Stopped in the history) and then the locks are broken."""
    group_id = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    process, _, deployment_id = start_waiting_rollout(small_lab, tmp_path, GO)
    base = ["-i", str(small_lab.inventory_path), "lock", "release", "-a", "hello", "-g", "web"]
    try:
        refused = CliRunner().invoke(cli, [*base, "--force"])
        assert refused.exit_code == 7, refused.output
        assert f"deployment {deployment_id} of hello/web runs on this machine" in refused.stderr
        assert "--kill" in refused.stderr
        assert process.poll() is None  # still running, its locks intact
        for host in ("web-1", "web-2"):
            lock = small_lab.host_path(
                host, f"{small_lab.deployment_root(host)}/locks/{group_id}/deployment"
            )
            assert lock.read_text() == f"{deployment_id}\n"
        killed = CliRunner().invoke(cli, [*base, "--force", "--kill", "--wait", "60"])
        assert killed.exit_code == 0, killed.output
        assert process.wait(timeout=60) == 6
    finally:
        process.kill()
        process.wait()
    assert f"stop requested for {deployment_id}" in killed.stderr
    for host in ("web-1", "web-2"):
        locks = small_lab.host_path(host, f"{small_lab.deployment_root(host)}/locks")
        assert not (locks / group_id).exists()
    store = open_store(os.environ["ORCHESTRATOR_STATE"])
    try:
        recorded = store.get(deployment_id)
        document = None if recorded is None else recorded.to_document()
    finally:
        store.close()
    assert document is not None and document["status"] == "Stopped"
