"""The lab fleet and the SSH transport against real sshd hosts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.errors import AuthFailed, ConnectTimeout, HostKeyMismatch, LabError, Unreachable
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.lab import processes
from orchestrator.lab.fleet import Lab
from orchestrator.lab.sshd import generate_key
from orchestrator.transport.ssh import SshTransport
from orchestrator.transport.ssh_limits import SshLimits
from tests.integration.conftest import start_lab
from tests.integration.helpers import NO_RETRY, host_spec, run_on
from tests.paths import HELLO_WEB


def test_hosts_check_reports_all_five_reachable(lab: Lab) -> None:
    result = CliRunner().invoke(
        cli, ["-i", str(lab.inventory_path), "hosts", "-a", "hello", "-g", "web", "--check"]
    )
    assert result.exit_code == 0, result.output
    assert "5 of 5 hosts reachable" in result.stderr


def test_plan_on_the_lab(lab: Lab) -> None:
    result = CliRunner().invoke(
        cli,
        ["-i", str(lab.inventory_path), "plan", "-a", "hello", "-g", "web", "-r", str(HELLO_WEB)],
    )
    assert result.exit_code == 0, result.output
    assert "web-1, web-2, web-3, web-4, web-5" in result.stdout


def test_commands_run_as_the_inventory_user_on_the_right_address(lab: Lab) -> None:
    result = run_on(host_spec(lab, "web-3"), 'id -un; echo "$SSH_CONNECTION"')
    user, connection = result.stdout.split("\n")[:2]
    assert user == lab.user
    assert connection.split()[2] == lab.host("web-3").address


def test_each_host_has_its_own_filesystem_view(lab: Lab) -> None:
    if lab.namespaced:
        run_on(host_spec(lab, "web-1"), "mkdir -p /srv/probe && echo web-1 > /srv/probe/owner")
        assert run_on(host_spec(lab, "web-2"), "cat /srv/probe/owner").exit_status != 0
        assert lab.host_path("web-1", "/srv/probe/owner").read_text() == "web-1\n"
        assert not Path("/srv/probe/owner").exists()  # the controller's /srv is untouched
    else:
        roots = {lab.deployment_root(h.name) for h in lab.hosts}
        assert len(roots) == len(lab.hosts)


def test_host_addresses_are_loopback_only(lab: Lab) -> None:
    assert all(host.address.startswith("127.") for host in lab.hosts)


def test_wrong_host_key_fails_naming_host_and_key_type(lab: Lab, tmp_path: Path) -> None:
    impostor = generate_key(tmp_path / "other_key", "impostor")
    known = tmp_path / "known_hosts"
    web2 = lab.host("web-2")
    known.write_text(f"[{web2.address}]:{web2.port} {impostor}\n")
    started = time.monotonic()
    with pytest.raises(HostKeyMismatch) as caught:
        run_on(
            host_spec(lab, "web-2", known_hosts=str(known)),
            "true",
            SshTransport(script=HOST_PROGRAMS),
        )
    assert caught.value.host == "web-2"
    assert "ssh-ed25519" in str(caught.value)
    assert time.monotonic() - started < 5  # not retried


def test_wrong_host_key_through_the_cli_exits_5(lab: Lab, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    inventory.write_text(lab.inventory_path.read_text().replace(str(lab.known_hosts), str(known)))
    result = CliRunner().invoke(
        cli, ["-i", str(inventory), "hosts", "-a", "hello", "-g", "web", "--check"]
    )
    assert result.exit_code == 5
    assert "0 of 5 hosts reachable" in result.stderr
    assert "not trusted" in result.stdout


def test_accept_new_records_an_unknown_key_then_holds_it(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ours = tmp_path / "state" / "known_hosts"
    transport = SshTransport(NO_RETRY, accept_new_file=ours, script=HOST_PROGRAMS)
    spec = host_spec(lab, "web-4", known_hosts=str(empty), host_key_policy="accept-new")
    assert run_on(spec, "true", transport).ok
    web4 = lab.host("web-4")
    assert ours.read_text().startswith(f"[{web4.address}]:{web4.port} ssh-ed25519 ")
    # A different key for the recorded host is refused from now on.
    ours.write_text(f"[{web4.address}]:{web4.port} {generate_key(tmp_path / 'k', 'x')}\n")
    with pytest.raises(HostKeyMismatch):
        run_on(spec, "true", transport)


def test_an_unauthorised_key_fails_authentication(lab: Lab, tmp_path: Path) -> None:
    generate_key(tmp_path / "stranger", "stranger")
    spec = host_spec(lab, "web-1", identity_files=(str(tmp_path / "stranger"),))
    with pytest.raises(AuthFailed, match="authentication failed"):
        run_on(spec, "true", SshTransport(SshLimits(connect_retries=2), script=HOST_PROGRAMS))


def test_a_stopped_host_is_unreachable_and_named(small_lab: Lab) -> None:
    small_lab.stop_host("web-2")
    result = CliRunner().invoke(
        cli, ["-i", str(small_lab.inventory_path), "hosts", "-a", "hello", "-g", "web", "--check"]
    )
    assert result.exit_code == 5
    assert "1 of 2 hosts reachable" in result.stderr
    # The library's hosts --check: the same answer, one HostCheck a host, nothing raised.
    from orchestrator import api

    checks = api.check_hosts(small_lab.inventory_path, "hello", "web", api.Settings())
    assert [(c.host.name, c.reachable) for c in checks] == [("web-1", True), ("web-2", False)]
    assert checks[0].error is None and checks[1].error is not None
    with pytest.raises(Unreachable) as caught:
        run_on(host_spec(small_lab, "web-2"), "true")
    assert caught.value.host == "web-2"
    small_lab.restart("web-2")
    assert run_on(host_spec(small_lab, "web-2"), "true").ok


def test_a_frozen_host_times_out_and_answers_after_thaw(small_lab: Lab) -> None:
    small_lab.freeze("web-1")
    try:
        with pytest.raises(ConnectTimeout):
            run_on(host_spec(small_lab, "web-1", connect_timeout=1.0), "true")
    finally:
        small_lab.thaw("web-1")
    assert run_on(host_spec(small_lab, "web-1"), "true").ok


def test_killing_sshd_drops_open_connections_until_restart(small_lab: Lab) -> None:
    spec = host_spec(small_lab, "web-1")

    async def scenario() -> None:
        session = await SshTransport(NO_RETRY, script=HOST_PROGRAMS).connect(spec)
        assert (await session.run("true")).ok
        small_lab.kill_sshd("web-1")
        with pytest.raises(Unreachable):
            await session.run("true", timeout=10)
        await session.close()

    asyncio.run(scenario())
    with pytest.raises(Unreachable):
        run_on(spec, "true")
    small_lab.restart("web-1")
    assert run_on(spec, "true").ok


def test_down_stops_exactly_the_lab_processes(small_lab: Lab) -> None:
    # A daemon started on a host (detached, as a hook would) and a bystander of our own.
    command = "setsid sleep 300 > /dev/null 2>&1 < /dev/null & echo $!"
    daemon = int(run_on(host_spec(small_lab, "web-1"), command).stdout.strip())
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        pids = small_lab.host_pids("web-1")
        if small_lab.namespaced:
            assert daemon in pids
        small_lab.down()
        assert not processes.alive(small_lab.hosts[0].pid)
        if small_lab.namespaced:
            assert not processes.alive(daemon)
        assert processes.alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
        if processes.alive(daemon):
            os.kill(daemon, signal.SIGKILL)


def test_a_second_lab_in_the_same_dir_is_refused(small_lab: Lab) -> None:
    with pytest.raises(LabError, match="already running"):
        Lab.up(small_lab.directory, 1)


def test_lab_commands_end_to_end(tmp_path: Path) -> None:
    directory = tmp_path / "cli-lab"
    base = [sys.executable, "-m", "orchestrator", "lab"]

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args, "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    up = lab("up", "--hosts", "2", "--base-address", "127.44.0.0")
    assert up.returncode == 0, up.stderr
    try:
        assert up.stdout.strip() == str(directory / "inventory.yaml")
        assert "hosts -a hello -g web --check" in up.stderr
        status = lab("status")
        assert status.returncode == 0 and status.stdout.count("yes") == 2
        validate = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "-i",
                str(directory / "inventory.yaml"),
                "validate",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert validate.returncode == 0, validate.stderr
    finally:
        down = lab("down")
    assert down.returncode == 0
    assert "stopped" in down.stderr
    assert lab("status").returncode == 1  # no lab any more


def test_down_never_stops_another_labs_host_whose_namespace_took_a_reused_id(
    tmp_path: Path,
) -> None:
    first = start_lab(tmp_path / "first", 1)
    second = start_lab(tmp_path / "second", 1)
    try:
        if not second.namespaced:
            pytest.fail("lab hosts get mount namespaces only as root (CI runs as root)")
        # The kernel hands a gone namespace's id to the next one: as if first's web-1 had been
        # restarted and second's web-1 then got the id of its old namespace.
        first.host("web-1").namespaces.append(second.host("web-1").namespaces[0])
        first.down()
        assert second.listener_alive(second.host("web-1"))
        assert run_on(host_spec(second, "web-1"), "true").ok
    finally:
        first.down()
        second.down()
