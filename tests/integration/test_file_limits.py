"""The open-file limit: the CLI raises its soft limit to the hard one before a deployment, and
refuses up front, naming how many it needs, when even the hard one is too low.

A deployment holds one connection a host at once: 100 hosts need more than a soft limit of 64.
The hosts here are 100 inventory entries for one lab sshd (each its own deployment root): 100
real connections at once without 100 sshd's.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from orchestrator.lab.fleet import Lab

HOSTS = 100


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "scripts").mkdir(parents=True)
    script = bundle / "scripts" / "ok.sh"
    script.write_text("#!/bin/sh\necho ok\n")
    script.chmod(0o755)
    (bundle / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall: [{location: scripts/ok.sh}]\n"
    )
    return bundle


def _inventory(path: Path, defaults: dict[str, object], address: str, port: int) -> Path:
    hosts = {
        f"h-{i}": {
            "address": address,
            "port": port,
            "deployment_root": f"/opt/orchestrator/root-{i}",
            "tags": {"role": "web"},
        }
        for i in range(1, HOSTS + 1)
    }
    group = {"tag_sets": [[{"key": "role", "value": "web"}]]}
    document = {
        "defaults": defaults,
        "hosts": hosts,
        "applications": {"hello": {"deployment_groups": {"web": group}}},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _limited(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _rollout(
    inventory: Path, bundle: Path, tmp_path: Path, soft: int, hard: int
) -> subprocess.CompletedProcess[str]:
    """``orchestrator rollout`` (all at once) in a process whose open-file limit is soft/hard."""
    env = {
        **os.environ,
        "ORCHESTRATOR_STATE": str(tmp_path / "state"),
        "ORCHESTRATOR_CACHE": str(tmp_path / "cache"),
    }
    command = ["-i", str(inventory), "rollout", "-a", "hello", "-g", "web", "-r", str(bundle)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            *command,
            "--deployment-config",
            "CodeDeployDefault.AllAtOnce",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited(soft, hard),  # setrlimit only, in the fresh child
        check=False,
    )


def test_a_soft_limit_below_the_fleet_is_raised_to_the_hard_one(
    small_lab: Lab, tmp_path: Path
) -> None:
    """Soft 64 (as `ulimit -n` 1024 is to a 1000-host fleet), hard 4096: the 100 connections fit
    once the CLI has raised its soft limit."""
    lab_inventory = yaml.safe_load(small_lab.inventory_path.read_text())
    web_1 = small_lab.host("web-1")
    inventory = _inventory(
        tmp_path / "inventory.yaml", lab_inventory["defaults"], web_1.address, web_1.port
    )
    done = _rollout(inventory, _bundle(tmp_path), tmp_path, 64, 4096)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    assert document["deploymentOverview"]["Succeeded"] == HOSTS


def test_a_hard_limit_below_the_fleet_is_refused_before_any_host_is_contacted(
    tmp_path: Path,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(HOSTS)
        listener.setblocking(False)
        address, port = listener.getsockname()
        defaults = {"user": "root", "ssh": {"config": "none", "host_key_policy": "off"}}
        inventory = _inventory(tmp_path / "inventory.yaml", defaults, address, port)
        done = _rollout(inventory, _bundle(tmp_path), tmp_path, 64, 100)
        assert done.returncode == 8, done.stderr
        needed = 64 + HOSTS  # the controller's own, and a socket a host
        assert f"a deployment to {HOSTS} host(s) needs about {needed} open files" in done.stderr
        assert "may open only 100 (hard limit 100)" in done.stderr
        assert f"ulimit -Hn {needed}" in done.stderr
        try:
            listener.accept()[0].close()
            contacted = True
        except BlockingIOError:
            contacted = False
        assert not contacted, "a host was contacted"
