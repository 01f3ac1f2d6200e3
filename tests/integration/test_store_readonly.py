"""The history store on a read-only filesystem (a read-only bind mount in a mount namespace of the
command's own: root ignores file modes, not a read-only mount). Reading commands read it;
commands that must write it say which file and what to do, exit 8, and contact no host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.events import LifecycleEventFinished
from orchestrator.models.results import (
    Deployment,
    LifecycleEvent,
    RevisionInfo,
    Status,
    Target,
)
from orchestrator.state.base import open_store
from tests.paths import HELLO_WEB

WAIT = 60


def _read_only(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``orchestrator --state STATE ARGS`` with STATE mounted read-only for it alone."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    namespace = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    command = [sys.executable, "-m", "orchestrator", "--state", str(state), *args]
    return subprocess.run(
        [*namespace, str(state), *command],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, str]:
    """A state dir whose history holds one finished deployment with a hook's output."""
    state = tmp_path / "state"
    store = open_store(str(state))
    deployment = Deployment(
        "d-READONLY1",
        "app",
        "g",
        "gid",
        RevisionInfo("src", "f" * 64, 1, "directory", None),
        "CodeDeployDefault.OneAtATime",
    )
    event = LifecycleEvent(
        "AfterInstall", status=Status.SUCCEEDED, output="[stdout]hello from a hook\n"
    )
    target = Target("a", "127.45.250.1", [event])
    deployment.targets["a"] = target
    deployment.status = Status.SUCCEEDED
    store(LifecycleEventFinished(deployment, target, event))
    store.save(deployment)
    store.close()
    return state, deployment.deployment_id


def test_reading_commands_read_a_read_only_store(recorded: tuple[Path, str]) -> None:
    state, deployment_id = recorded
    shown = _read_only(state, "status", deployment_id, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "Succeeded"
    listed = _read_only(state, "history", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [d["deploymentId"] for d in json.loads(listed.stdout)] == [deployment_id]
    logs = _read_only(state, "logs", deployment_id)
    assert logs.returncode == 0, logs.stderr
    assert "hello from a hook" in logs.stdout


def test_writing_commands_name_the_read_only_store_and_contact_nothing(
    recorded: tuple[Path, str], tmp_path: Path
) -> None:
    state, deployment_id = recorded
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(  # a host nobody listens on: reaching it would exit 5, not 8
        "hosts:\n  a: {address: 127.45.250.1, port: 9, tags: {r: x}}\n"
        "applications:\n  app:\n    deployment_groups:\n      g: {tag_sets: [[{key: r}]]}\n"
    )
    for args in (
        ["stop", deployment_id],
        ["-i", str(inventory), "rollout", "-a", "app", "-g", "g", "-r", str(HELLO_WEB)],
    ):
        result = _read_only(state, *args)
        assert result.returncode == 8, (args, result.stderr)
        assert f"error: the history store {state / 'history.sqlite'} cannot be" in result.stderr
        assert "writable" in result.stderr
        assert "Traceback" not in result.stderr
