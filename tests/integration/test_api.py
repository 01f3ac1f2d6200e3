"""The library API against real sshd hosts: the README's example as written, and a resume that
follows the rules its deployment recorded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from tests.integration.helpers import start_waiting_rollout, waiting_hook
from tests.paths import REPO

README_INVENTORY = "/tmp/orchestrator-lab/inventory.yaml"
GO = "/srv/go"


def readme_example() -> str:
    """The first Python block of the README's "Use it from Python" section, as it is there."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Use it from Python\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python block under 'Use it from Python'"
    return match.group(1)


def test_the_readme_example_deploys_prints_each_host_and_rolls_back(fleet: Lab) -> None:
    code = readme_example()
    assert README_INVENTORY in code
    code = code.replace(README_INVENTORY, str(fleet.inventory_path))  # this test's fleet
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=os.environ,  # ORCHESTRATOR_STATE and _CACHE of this test
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    first_id, status = lines[0].split()
    assert status == "Succeeded" and first_id.startswith("d-")
    assert lines[1:6] == [f"web-{n} Succeeded" for n in range(1, 6)]
    word, rollback_id, rollback_status = lines[6].split()
    assert (word, rollback_status) == ("rollback", "Succeeded") and rollback_id != first_id
    assert run.stderr == ""  # the API prints nothing of its own


def _with_config(lab: Lab, minimum: dict[str, Any]) -> None:
    document = yaml.safe_load(lab.inventory_path.read_text())
    document["deployment_configs"]["Recorded"] = {"minimum_healthy_hosts": minimum}
    lab.inventory_path.write_text(yaml.safe_dump(document))


def test_a_resume_runs_under_the_rules_its_deployment_recorded(
    small_lab: Lab, tmp_path: Path
) -> None:
    all_at_once = {"type": "HOST_COUNT", "value": 0}
    _with_config(small_lab, all_at_once)
    process, _, deployment_id = start_waiting_rollout(
        small_lab, tmp_path, GO, "--deployment-config", "Recorded"
    )
    try:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    # Meanwhile the inventory's config of that name changed to one 2 hosts can never keep.
    _with_config(small_lab, {"type": "HOST_COUNT", "value": 2})
    small_lab.host_path("web-1", GO).write_text("go\n")
    small_lab.host_path("web-2", GO).write_text("go\n")
    resumed = CliRunner().invoke(
        cli,
        [
            "-i",
            str(small_lab.inventory_path),
            "rollout",
            "--resume",
            deployment_id,
            "--output",
            "json",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    document = json.loads(resumed.stdout)
    assert document["status"] == "Succeeded"
    assert [t["status"] for t in document["targets"]] == ["Succeeded", "Succeeded"]
    rules = document["deploymentRules"]
    assert rules["deploymentConfig"]["minimumHealthyHosts"] == all_at_once


STOPPED_BY_ANOTHER_PROCESS = """
import sys
from orchestrator import deploy
from orchestrator.events import LifecycleEventStarted

def started(event):
    if isinstance(event, LifecycleEventStarted) and event.event.name == "AfterInstall":
        print(event.deployment.deployment_id, flush=True)

outcome = deploy(sys.argv[1], "hello", "web", sys.argv[2], sinks=[started])
print(outcome.deployment.status, flush=True)
"""


def test_orchestrator_stop_stops_a_deployment_a_python_program_runs(
    small_lab: Lab, tmp_path: Path
) -> None:
    """The program catches no SIGUSR1 (its default action would end it): `orchestrator stop`
    only records the request, which the API reads within about a second."""
    from tests.integration.revisions import script_bundle

    bundle = script_bundle(tmp_path, "slow", {"AfterInstall": waiting_hook(GO)})
    program = subprocess.Popen(
        [sys.executable, "-c", STOPPED_BY_ANOTHER_PROCESS, str(small_lab.inventory_path), bundle],
        cwd=REPO,
        env=os.environ,  # ORCHESTRATOR_STATE and _CACHE of this test
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert program.stdout is not None
        deployment_id = program.stdout.readline().strip()
        assert deployment_id.startswith("d-"), program.communicate(timeout=60)
        stop = CliRunner().invoke(cli, ["stop", deployment_id, "--wait", "0"])
        assert stop.exit_code == 0, stop.output
        assert f"stop requested for {deployment_id}" in stop.output
        time.sleep(2.5)  # read within about a second, then hooks finish; nothing new starts
        small_lab.host_path("web-1", GO).write_text("go\n")
        out, err = program.communicate(timeout=60)
    finally:
        program.kill()
    assert program.returncode == 0, err  # not 138: SIGUSR1 would have ended it
    assert out.strip() == "Stopped"
    document = json.loads(
        CliRunner().invoke(cli, ["status", deployment_id, "--output", "json"]).stdout
    )
    assert document["status"] == "Stopped"
    targets = document["targets"]
    assert [t["status"] for t in targets][1:] == ["Skipped"] * (len(targets) - 1)
