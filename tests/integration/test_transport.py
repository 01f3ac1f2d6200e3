"""The SSH transport's sharing: a ProxyJump bastion connected once for every host behind it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from orchestrator.transport.ssh import SshTransport
from tests.integration.helpers import NO_RETRY, rollout
from tests.integration.revisions import script_bundle


def test_proxyjump_bastion_is_connected_once_and_shared(fleet: Lab, tmp_path: Path) -> None:
    bastion = fleet.host("web-5")
    behind = [fleet.host(name) for name in ("web-1", "web-2", "web-3")]
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            f"Host {host.address}\n  ProxyJump {fleet.user}@{bastion.address}:{bastion.port}\n"
            for host in behind
        )
    )
    inventory = load_inventory(fleet.inventory_path)
    specs = [
        dataclasses.replace(
            inventory.resolve_host(h.name),
            ssh=dataclasses.replace(inventory.resolve_host(h.name).ssh, config=str(config)),
        )
        for h in behind
    ]
    accepted_before = (fleet.host_dir("web-5") / "sshd.log").read_text().count("Accepted publickey")

    async def connect_all() -> list[str]:
        transport = SshTransport(NO_RETRY)
        sessions = await asyncio.gather(*(transport.connect(spec) for spec in specs))
        try:
            results = await asyncio.gather(*(s.run('echo "$SSH_CONNECTION"') for s in sessions))
            return [r.stdout.split()[2] for r in results]
        finally:
            for session in sessions:
                await session.close()
            await transport.close()

    served_by = asyncio.run(connect_all())
    assert served_by == [host.address for host in behind]
    accepted = (fleet.host_dir("web-5") / "sshd.log").read_text().count("Accepted publickey")
    assert accepted - accepted_before == 1  # one bastion connection for three hosts


def test_old_deployment_directories_are_pruned_but_not_the_last_successful(
    small_lab: Lab, tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        small_lab.inventory_path.read_text().replace(
            "defaults:\n", "defaults:\n  max_revisions: 2\n"
        )
    )
    gid = load_inventory(inventory).group_id("hello", "web")
    ids = []
    for version in range(4):
        bundle = script_bundle(
            tmp_path / str(version), "app", {}, files={"version": f"{version}\n"}
        )
        result = rollout(
            small_lab,
            bundle,
            "--deployment-config",
            "CodeDeployDefault.AllAtOnce",
            inventory=inventory,
        )
        assert result.exit_code == 0
        ids.append(result.document["deploymentId"])
    kept = {
        p.name
        for p in small_lab.host_path(
            "web-1", f"{small_lab.deployment_root('web-1')}/{gid}"
        ).iterdir()
    }
    assert kept == set(ids[-2:])
    logs = CliRunner().invoke(cli, ["logs", ids[-1], "--host", "web-1", "--output", "json"])
    rows = json.loads(logs.stdout)
    assert rows[0]["host"] == "web-1" and {r["lifecycleEventName"] for r in rows} >= {
        "DownloadBundle",
        "Install",
    }
    assert any("removed old revision directory" in r["output"] for r in rows)
