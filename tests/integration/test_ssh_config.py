"""OpenSSH's client config as OpenSSH reads it, against real sshd: a host known to the inventory
by name only, a two-hop ProxyJump, a passphrase-protected key served by a real ssh-agent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.errors import AuthFailed
from orchestrator.lab.fleet import Lab
from orchestrator.models.hosts import HostSpec
from tests.integration.helpers import host_spec, rollout, run_on, served_addresses
from tests.integration.revisions import script_bundle

PASSPHRASE = "correct horse battery staple"


def accepted(lab: Lab, name: str) -> list[str]:
    """The users sshd on ``name`` let in so far."""
    log = (lab.host_dir(name) / "sshd.log").read_text()
    return re.findall(r"Accepted publickey for (\S+)", log)


def names_only_inventory(lab: Lab, path: Path, config: Path) -> Path:
    """The lab's inventory with every host known by its name alone: no address, port, user,
    identity file or known_hosts; ssh_config says the rest."""
    data: dict[str, Any] = yaml.safe_load(lab.inventory_path.read_text())
    data["defaults"].pop("user")
    data["defaults"]["become"] = "sudo"
    data["defaults"]["ssh"] = {"config": str(config), "connect_timeout": 5}
    for host in data["hosts"].values():
        host.pop("address")
        host.pop("port")
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_host_known_by_name_only_is_reached_through_ssh_config(
    small_lab: Lab, tmp_path: Path, sudo_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # the key file alone must do
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            f"Host {host.name}\n  HostName {host.address}\n  Port {host.port}\n"
            f"  User {sudo_user}\n"
            f"  IdentityFile {tmp_path}/no_such_key\n"  # skipped, as OpenSSH skips it
            f"  IdentityFile {small_lab.client_key}\n"
            f"  UserKnownHostsFile {small_lab.known_hosts}\n"
            for host in small_lab.hosts
        )
    )
    inventory = names_only_inventory(small_lab, tmp_path / "inventory.yaml", config)
    checked = CliRunner().invoke(
        cli,
        ["-i", str(inventory), "hosts", "-a", "hello", "-g", "web", "--check", "--output", "json"],
    )
    assert checked.exit_code == 0, checked.output
    rows = json.loads(checked.stdout)
    # --check shows where ssh_config took each host.
    assert [(r["host"], r["address"], r["port"], r["reachable"]) for r in rows] == [
        (h.name, h.address, h.port, True) for h in small_lab.hosts
    ]
    body = 'echo "hook user=$(id -un) ssh user=$SUDO_USER"\n'
    bundle = script_bundle(tmp_path, "by-name", {"AfterInstall": body}, runas=None)
    result = rollout(
        small_lab, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce", inventory=inventory
    )
    assert result.exit_code == 0, result.stderr
    log = result.event("web-2", "AfterInstall")["diagnostics"]["logTail"]
    assert f"hook user=root ssh user={sudo_user}" in log  # ssh_config's User, then sudo
    assert set(accepted(small_lab, "web-1")) == {sudo_user}


def test_two_hop_proxy_jump_each_bastion_under_its_own_entry(lab: Lab, tmp_path: Path) -> None:
    first, second = lab.host("web-1"), lab.host("web-2")
    behind = ["web-3", "web-4"]
    config = tmp_path / "ssh_config"
    # The bastions are reached by alias: where they are is their own entries' to say.
    config.write_text(
        f"Host {' '.join(behind)}\n  ProxyJump {lab.user}@hop-one,hop-two:{second.port}\n"
        f"Host hop-one\n  HostName {first.address}\n  Port {first.port}\n"
        f"Host hop-two\n  HostName {second.address}\n  User {lab.user}\n"
    )
    specs = [host_spec(lab, name, config=str(config)) for name in behind]
    before = {name: len(accepted(lab, name)) for name in ("web-1", "web-2", *behind)}

    served_by = served_addresses(specs)
    assert served_by == [lab.host(name).address for name in behind]
    logins = {name: len(accepted(lab, name)) - count for name, count in before.items()}
    # One connection to each bastion, shared by both hosts behind them.
    assert logins == {"web-1": 1, "web-2": 1, "web-3": 1, "web-4": 1}


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent on a socket of the test's own; killed after the test."""
    socket = tmp_path / "agent.sock"
    # Without -D the agent forks once its socket listens: no waiting needed after this returns.
    started = subprocess.run(
        ["ssh-agent", "-s", "-a", str(socket)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", started.stdout).group(1))  # type: ignore[union-attr]
    try:
        yield str(socket)
    finally:
        os.kill(pid, signal.SIGTERM)


def encrypted_key(lab: Lab, directory: Path) -> Path:
    """A passphrase-protected key that the lab's hosts accept."""
    key = directory / "encrypted_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "encrypted", "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    with lab.authorized_keys.open("a") as keys:
        keys.write(key.with_name(key.name + ".pub").read_text())
    return key


def add_to_agent(key: Path, socket: str, directory: Path) -> None:
    askpass = directory / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
    askpass.chmod(0o700)
    env = {
        "PATH": os.environ["PATH"],
        "SSH_AUTH_SOCK": socket,
        "SSH_ASKPASS": str(askpass),
        "SSH_ASKPASS_REQUIRE": "force",  # ask the program, not a terminal
    }
    subprocess.run(["ssh-add", str(key)], env=env, stdin=subprocess.DEVNULL, check=True, timeout=30)


def with_key(lab: Lab, key: Path) -> HostSpec:
    return host_spec(lab, "web-1", identity_files=(str(key),))


def test_a_passphrase_protected_key_is_used_from_ssh_agent(
    small_lab: Lab, tmp_path: Path, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = encrypted_key(small_lab, tmp_path)
    add_to_agent(key, agent, tmp_path)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    assert run_on(with_key(small_lab, key), "echo ok").stdout == "ok\n"


def test_a_passphrase_protected_key_without_agent_fails_saying_so(
    small_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = encrypted_key(small_lab, tmp_path)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AuthFailed) as caught:
        run_on(with_key(small_lab, key), "echo ok")
    assert caught.value.host == "web-1"
    assert f"passphrase-protected {key} skipped" in caught.value.message
    assert "ssh-agent" in caught.value.message


def test_an_unreadable_identity_file_fails_the_host_and_is_recorded(
    small_lab: Lab, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_key"
    broken.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        small_lab.inventory_path.read_text().replace(str(small_lab.client_key), str(broken))
    )
    result = rollout(small_lab, script_bundle(tmp_path, "k", {}), inventory=inventory)
    assert result.exit_code == 5, result.stderr
    for host in ("web-1", "web-2"):
        assert result.target(host)["status"] == "Failed"
    for host in ("web-1", "web-2"):
        recorded = result.event(host, "ApplicationStop")["diagnostics"]["message"]
        assert f"cannot use identity file {broken}: Missing PEM footer" in recorded


def test_accept_new_from_the_command_line_records_keys_in_the_state_dir(
    small_lab: Lab, tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yaml"
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inventory.write_text(
        small_lab.inventory_path.read_text()
        .replace(str(small_lab.known_hosts), str(empty))
        .replace("host_key_policy: strict", "host_key_policy: accept-new")
    )
    state = tmp_path / "state"
    command = ["-i", str(inventory), "--state", str(state), "hosts", "-a", "hello", "-g", "web"]
    first = CliRunner().invoke(cli, [*command, "--check"])
    assert first.exit_code == 0, first.output
    recorded = (state / "known_hosts").read_text().splitlines()
    assert sorted(line.split()[0] for line in recorded) == sorted(
        f"[{h.address}]:{h.port}" for h in small_lab.hosts
    )
    assert empty.read_text() == ""  # the operator's file is never written
    assert (state / "known_hosts").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    # Recorded keys are held: a host presenting another key is refused from now on.
    web1 = small_lab.host("web-1")
    other = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert other.returncode == 0
    impostor = (tmp_path / "other.pub").read_text().split()[:2]
    (state / "known_hosts").write_text(
        "\n".join(
            f"[{web1.address}]:{web1.port} {' '.join(impostor)}"
            if line.startswith(f"[{web1.address}]")
            else line
            for line in recorded
        )
        + "\n"
    )
    second = CliRunner().invoke(cli, [*command, "--check"])
    assert second.exit_code == 5
    assert "1 of 2 hosts reachable" in second.stderr


def test_an_identity_file_that_does_not_exist_is_skipped(lab: Lab, tmp_path: Path) -> None:
    # The usual laptop: ~/.ssh/config names a key for every host that this machine lacks.
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {tmp_path}/id_absent\n  User nobody-here\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        lab.inventory_path.read_text().replace("config: none", f"config: {config}")
    )
    checked = CliRunner().invoke(
        cli, ["-i", str(inventory), "hosts", "-a", "hello", "-g", "web", "--check"]
    )
    assert checked.exit_code == 0, checked.output  # and the inventory's user won over User


def test_proxy_command_from_ssh_config_carries_the_connection(lab: Lab, tmp_path: Path) -> None:
    bastion, target = lab.host("web-5"), lab.host("web-3")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host web-3\n  HostName {target.address}\n"
        f"  ProxyCommand ssh -F {lab.ssh_config} -W %h:%p {bastion.name}\n"
    )
    before = len(accepted(lab, "web-5"))
    result = run_on(host_spec(lab, "web-3", config=str(config)), 'echo "$SSH_CONNECTION"')
    assert result.stdout.split()[2] == target.address
    assert len(accepted(lab, "web-5")) == before + 1  # through the bastion's sshd


def test_a_malformed_ssh_config_fails_each_host_naming_file_and_line(
    lab: Lab, tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  Port twenty-two\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        lab.inventory_path.read_text().replace("config: none", f"config: {config}")
    )
    checked = CliRunner().invoke(
        cli,
        ["-i", str(inventory), "hosts", "-a", "hello", "-g", "web", "--check", "--output", "json"],
    )
    assert checked.exit_code == 5
    assert "0 of 5 hosts reachable" in checked.stderr
    for row in json.loads(checked.stdout):
        assert f"web-{row['host'][-1]}: ssh_config: {config} line 2: Invalid Port" in row["error"]


AGENT_PROBE = 'printf "%s\\n" "${SSH_AUTH_SOCK:-unset}" > /srv/agent-$LIFECYCLE_EVENT\n'


def test_the_agent_is_forwarded_only_when_the_inventory_asks(
    small_lab: Lab, tmp_path: Path, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent at hand and ssh_config's ``ForwardAgent yes``: hooks see no SSH_AUTH_SOCK, and
    see one (the forwarded agent's) once the inventory says ``forward_agent: true``."""
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    ForwardAgent yes\n")
    data: dict[str, Any] = yaml.safe_load(small_lab.inventory_path.read_text())
    data["defaults"]["ssh"]["config"] = str(config)
    asked = tmp_path / "inventory.yaml"
    asked.write_text(yaml.safe_dump(data))
    bundle = script_bundle(tmp_path, "agent", {"BeforeInstall": AGENT_PROBE})
    result = rollout(small_lab, bundle, inventory=asked)
    assert result.exit_code == 0, result.stderr
    seen = small_lab.host_path("web-1", "/srv/agent-BeforeInstall")
    assert seen.read_text() == "unset\n"

    data["defaults"]["ssh"]["forward_agent"] = True
    asked.write_text(yaml.safe_dump(data))
    result = rollout(small_lab, bundle, inventory=asked)
    assert result.exit_code == 0, result.stderr
    forwarded = seen.read_text().strip()
    assert forwarded not in ("unset", agent)
    assert forwarded.startswith("/tmp/ssh-")
