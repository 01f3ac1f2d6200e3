"""How a host is reached: the inventory, then ssh_config for the host's name, then OpenSSH's
defaults; ProxyJump hops as OpenSSH reads them (no SSH here: resolution only)."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from orchestrator.errors import ClientConfigError
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import parse_inventory
from orchestrator.transport.ssh_config import Jump, Route, parse_proxy_jump, resolve


@pytest.mark.parametrize(
    "value,hops",
    [
        ("jump", [Jump("jump")]),
        ("u1@jump1,u2@jump2:2222", [Jump("jump1", None, "u1"), Jump("jump2", 2222, "u2")]),
        ("[::1]:2222", [Jump("::1", 2222)]),
        ("admin@[fe80::1%eth0]", [Jump("fe80::1%eth0", None, "admin")]),
        ("::1", [Jump("::1")]),  # an IPv6 address with no port needs no brackets
        ("ssh://ops@bastion:2200/", [Jump("bastion", 2200, "ops")]),
        ("me@corp.com@jump", [Jump("jump", None, "me@corp.com")]),  # the last @ splits, as ssh
        ("10.0.0.1:22, b", [Jump("10.0.0.1", 22), Jump("b")]),
    ],
)
def test_proxy_jump_hops(value: str, hops: list[Jump]) -> None:
    assert list(parse_proxy_jump(value)) == hops


@pytest.mark.parametrize("value", ["", "a,,b", "jump:0", "jump:ssh", "[::1", "[::1]x", "@jump"])
def test_malformed_proxy_jump_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match="ProxyJump"):
        parse_proxy_jump(value)


def test_jump_prints_as_written() -> None:
    assert [str(hop) for hop in parse_proxy_jump("u@[::1]:2222,b")] == ["u@[::1]:2222", "b"]


def host(inventory_hosts: str, name: str = "web-1", defaults: str = "") -> HostSpec:
    text = f"defaults:\n{defaults or '  become: sudo'}\nhosts:\n{inventory_hosts}"
    return parse_inventory(text).resolve_host(name)


def with_config(tmp_path: Path, text: str, hosts: str, defaults: str = "") -> Route:
    config = tmp_path / "ssh_config"
    config.write_text(text)
    settings = f"  ssh: {{config: {config}}}\n{defaults}"
    return resolve(host(hosts, defaults=settings))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home: OpenSSH's defaults (~/.ssh/id_*, ~/.ssh/known_hosts) point into it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    return tmp_path / "home"


def test_a_host_named_only_is_reached_as_its_ssh_config_entry_says(
    tmp_path: Path, home: Path
) -> None:
    key = tmp_path / "deploy_key"
    key.write_text("not read here")
    route = with_config(
        tmp_path,
        "Host web-*\n  HostName 10.1.1.%h\n  User ops\n  Port 2200\n"
        f"  IdentityFile {tmp_path}/missing_key\n  IdentityFile {key}\n"
        f"  UserKnownHostsFile {tmp_path}/known\n",
        "  web-1: {tags: {role: web}}\n",
    )
    assert (route.address, route.port, route.user) == ("10.1.1.web-1", 2200, "ops")
    assert route.identity_files == (key,)  # the missing one is skipped, as OpenSSH does
    assert route.known_hosts == (tmp_path / "known",)
    assert (route.host.address, route.host.port, route.host.user) == ("10.1.1.web-1", 2200, "ops")


def test_what_the_inventory_sets_wins_over_ssh_config(tmp_path: Path, home: Path) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  HostName 10.9.9.9\n  User ops\n  Port 2200\n  IdentityFile ~/cfg_key\n",
        "  web-1: {address: 10.0.0.5, port: 22, user: deploy,"
        " ssh: {identity_files: [~/inv_key], known_hosts: ~/kh}}\n",
    )
    assert (route.address, route.port, route.user) == ("10.0.0.5", 22, "deploy")
    assert route.host.ssh.identity_files == ("~/inv_key",)
    assert route.known_hosts == (home / "kh",)


def test_defaults_user_and_port_win_over_ssh_config_but_its_hostname_is_used(
    tmp_path: Path, home: Path
) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  HostName 10.9.9.9\n  User ops\n  Port 2200\n",
        "  web-1: {tags: {}}\n",
        defaults="  user: deploy\n  port: 2022\n",
    )
    assert (route.address, route.port, route.user) == ("10.9.9.9", 2022, "deploy")


def test_host_patterns_match_the_inventory_name_not_the_address(tmp_path: Path, home: Path) -> None:
    route = with_config(
        tmp_path,
        "Host 10.0.0.5\n  User by-address\nHost web-1\n  Port 2200\n",
        "  web-1: {address: 10.0.0.5}\n",
    )
    assert (route.user, route.port) == (getpass.getuser(), 2200)


def test_without_inventory_or_ssh_config_openssh_defaults_apply(tmp_path: Path, home: Path) -> None:
    (home / ".ssh" / "id_ed25519").write_text("key")
    (home / ".ssh" / "id_rsa").write_text("key")
    route = resolve(host("  web-1: {tags: {}}\n"))
    assert (route.address, route.port, route.user) == ("web-1", 22, getpass.getuser())
    assert route.identity_files == (home / ".ssh" / "id_rsa", home / ".ssh" / "id_ed25519")
    assert route.known_hosts == (home / ".ssh" / "known_hosts",)
    assert route.jumps == ()


def test_config_none_ignores_ssh_config(tmp_path: Path, home: Path) -> None:
    (home / ".ssh" / "config").write_text("Host web-1\n  User ops\n")
    assert resolve(host("  web-1: {tags: {}}\n")).user == "ops"  # ~/.ssh/config by default
    ignored = host("  web-1: {tags: {}}\n", defaults="  ssh: {config: none}\n")
    assert resolve(ignored).user == getpass.getuser()


def test_an_unreadable_ssh_config_is_a_clear_error_for_the_host(tmp_path: Path, home: Path) -> None:
    with pytest.raises(ClientConfigError) as caught:
        with_config(tmp_path, "Host *\n  Port ssh\n", "  web-1: {address: 10.0.0.5}\n")
    assert caught.value.host == "web-1"
    assert f"{tmp_path / 'ssh_config'} line 2" in caught.value.message
    assert "Port" in caught.value.message


def test_each_bastion_is_resolved_under_its_own_name(tmp_path: Path, home: Path) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  ProxyJump u1@jump1,u2@jump2:2222\n"
        "Host jump1\n  HostName 127.0.0.9\n  Port 2201\n  User ignored\n"
        "Host jump2\n  HostName 127.0.0.10\n  ProxyJump elsewhere\n"
        "Host *\n  User everyone\n",
        "  web-1: {address: 10.0.0.5, user: deploy}\n",
    )
    hops = [(hop.user, hop.address, hop.port) for hop in route.jumps]
    # jump2's own ProxyJump is not followed: ssh -J a,b reaches b through a.
    assert hops == [("u1", "127.0.0.9", 2201), ("u2", "127.0.0.10", 2222)]
    assert (route.user, route.address) == ("deploy", "10.0.0.5")
    assert all(hop.jumps == () for hop in route.jumps)


def test_the_agent_is_forwarded_to_the_host_that_asks_never_to_its_bastions(
    tmp_path: Path, home: Path
) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  ProxyJump jump1,jump2\n",
        "  web-1: {address: 10.0.0.5, ssh: {forward_agent: true}}\n",
    )
    assert route.host.ssh.forward_agent is True
    assert [hop.host.ssh.forward_agent for hop in route.jumps] == [False, False]


def test_a_bastion_takes_its_user_from_its_own_entry_not_the_inventory(
    tmp_path: Path, home: Path
) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  ProxyJump jump1\nHost jump1\n  User jumper\n  ProxyJump [::1]:2022\n",
        "  web-1: {user: deploy}\n",
    )
    hops = [(hop.user, hop.address, hop.port) for hop in route.jumps]
    # The first hop's own ProxyJump comes first: `ssh jump1` goes through it.
    assert hops == [(getpass.getuser(), "::1", 2022), ("jumper", "jump1", 22)]


def test_a_proxy_jump_loop_is_refused(tmp_path: Path, home: Path) -> None:
    with pytest.raises(ClientConfigError, match="longer than"):
        with_config(
            tmp_path,
            "Host web-1\n  ProxyJump a\nHost a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
            "  web-1: {}\n",
        )


def test_a_malformed_proxy_jump_in_ssh_config_is_an_error_for_the_host(
    tmp_path: Path, home: Path
) -> None:
    with pytest.raises(ClientConfigError) as caught:
        with_config(tmp_path, "Host web-1\n  ProxyJump jump:99999\n", "  web-1: {}\n")
    assert caught.value.host == "web-1"
    assert "port '99999'" in caught.value.message


def test_proxy_command_expands_for_the_host_and_yields_to_a_proxy_jump(
    tmp_path: Path, home: Path
) -> None:
    route = with_config(
        tmp_path,
        "Host web-1\n  HostName 10.9.9.9\n  ProxyCommand ssh -W %h:%p gate\n"
        "Host web-2\n  ProxyJump gate\n  ProxyCommand never\n",
        "  web-1: {port: 2200}\n  web-2: {}\n",
    )
    assert route.proxy_command == "ssh -W 10.9.9.9:2200 gate"
    config = tmp_path / "ssh_config"
    jumped = resolve(host("  web-2: {}\n", "web-2", defaults=f"  ssh: {{config: {config}}}\n"))
    assert (jumped.proxy_command, [hop.address for hop in jumped.jumps]) == (None, ["gate"])


def test_no_user_anywhere_is_an_error_for_the_host(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")

    monkeypatch.setattr(getpass, "getuser", unknown)
    with pytest.raises(ClientConfigError, match="set `user` in the inventory"):
        resolve(host("  web-1: {}\n"))
    assert resolve(host("  web-1: {user: deploy}\n")).user == "deploy"
