"""The SSH transport: the host-side runner's framing, a ProxyJump bastion shared by its hosts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.hostproto.replies import parse_probe
from orchestrator.lab.fleet import Lab
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import load_inventory
from orchestrator.transport.base import CommandResult, ScriptCall
from orchestrator.transport.ssh import SshTransport
from tests.integration.helpers import NO_RETRY, rollout, served_addresses
from tests.integration.revisions import hello_web, script_bundle


def test_proxyjump_bastion_is_connected_once_and_shared(fleet: Lab, tmp_path: Path) -> None:
    bastion = fleet.host("web-5")
    behind = [fleet.host(name) for name in ("web-1", "web-2", "web-3")]
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            f"Host {host.name}\n  ProxyJump {fleet.user}@{bastion.address}:{bastion.port}\n"
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

    served_by = served_addresses(specs)
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


def test_the_runner_keeps_requests_in_step(fleet: Lab, tmp_path: Path) -> None:
    """Many steps on one runner: odd arguments, stdin read or left unread, failures."""
    spec = load_inventory(fleet.inventory_path).resolve_host("web-1")
    odd_root = "/opt/it's a $root"
    bundle = tmp_path / "not-the-bundle.tar"
    bundle.write_bytes(b"\x00boundary?\n" * 50_000)

    async def steps() -> list[CommandResult]:
        session = await SshTransport(NO_RETRY, script=HOST_PROGRAMS).connect(spec)
        try:
            results = []
            for _ in range(3):
                probe = ScriptCall("probe", (odd_root, "group", "d-X"))
                results.append(await session.call(probe, timeout=30))
                # download reads all its stdin, finds the wrong checksum and fails
                download = ScriptCall("download", (odd_root, "g", "d-X", "0" * 64, "", "5", ""))
                results.append(await session.call(download, stdin_file=bundle, timeout=30))
                # lock status reads none of its stdin (more than a pipe holds): the runner drains it
                lock = ScriptCall("lock", ("status", odd_root, "g", "-"))
                results.append(await session.call(lock, stdin=b"unread\n" * 20_000, timeout=30))
                # and unread input without a newline: the runner's read takes it all to the end
                results.append(await session.call(lock, stdin=b"x" * 70_000, timeout=30))
            runner = session._runner  # one runner served every step
            # Arguments with newlines (a lock holder's lines) travel to the runner intact.
            holder = "holder=it's me\npid=1 $HOME\n\nsince=`now`"
            acquire = ScriptCall("lock", ("acquire", odd_root, "g", "d-X", "120", holder))
            results.append(await session.call(acquire, timeout=30))
            results.append(await session.call(lock, timeout=30))
            assert session._runner is runner
            return results
        finally:
            await session.close()

    results = asyncio.run(steps())
    for i in range(3):
        probe, download, lock, lock_again = results[4 * i : 4 * i + 4]
        assert probe.ok and parse_probe(probe).last_successful is None
        assert download.exit_status == 3 and "bundle checksum mismatch" in download.stderr
        assert lock.ok and lock.frames == (("lock", b"lock=free\n"),)
        assert lock_again == lock
    assert results[-2].frames == (("lock", b"lock=acquired\n"),)
    assert results[-1].frames[0] == ("lock", b"lock=held\n")
    assert results[-1].frames[1][0] == "lock-holder"
    assert (
        results[-1]
        .frames[1][1]
        .startswith(b"holder=it's me\npid=1 $HOME\n\nsince=`now`\ndeployment=d-X\n")
    )
    # The quote and the dollar arrived intact: download made its directories under that root.
    assert fleet.host_path("web-1", f"{odd_root}/g/d-X/logs").is_dir()


def test_the_handshake_cap_bounds_the_handshakes_in_flight(lab: Lab) -> None:
    inventory = load_inventory(lab.inventory_path)
    specs = [inventory.resolve_host(host.name) for host in lab.hosts]

    async def connect_all(cap: int) -> int:
        transport = SshTransport(
            dataclasses.replace(NO_RETRY, max_handshakes=cap), script=HOST_PROGRAMS
        )
        real_open = transport._open
        in_flight = most = 0

        async def counted_open(host: HostSpec) -> Any:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                return await real_open(host)
            finally:
                in_flight -= 1

        transport._open = counted_open  # type: ignore[method-assign]
        sessions = await asyncio.gather(*(transport.connect(spec) for spec in specs))
        for session in sessions:
            await session.close()
        await transport.close()
        return most

    assert len(specs) >= 3
    assert asyncio.run(connect_all(2)) == 2
    assert asyncio.run(connect_all(len(specs))) == len(specs)


def test_a_rollout_with_one_handshake_at_a_time_reaches_every_host(
    fleet: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MAX_HANDSHAKES", "1")
    result = rollout(
        fleet, hello_web(tmp_path), "--deployment-config", "CodeDeployDefault.AllAtOnce"
    )
    assert result.exit_code == 0, result.stderr
    assert result.document["deploymentOverview"]["Succeeded"] == len(fleet.hosts)
