"""The open-file limit's arithmetic where no real limit can show it: an unlimited hard limit, a
kernel that refuses the raise, and the estimate per host."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from orchestrator import limits
from orchestrator.errors import TooManyFiles
from orchestrator.models.inventory import parse_inventory
from orchestrator.transport.ssh_limits import (
    BASE_DESCRIPTORS,
    PROXY_COMMAND_DESCRIPTORS,
    descriptors_for,
)


def _limits(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, refuse: bool = False
) -> list[tuple[int, int]]:
    asked: list[tuple[int, int]] = []

    def setrlimit(which: int, values: tuple[int, int]) -> None:
        asked.append(values)
        if refuse:
            raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return asked


def test_an_unlimited_hard_limit_raises_the_soft_one_far(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _limits(monkeypatch, 1024, resource.RLIM_INFINITY)
    assert limits.raise_file_limit() == (limits.UNLIMITED_TARGET, resource.RLIM_INFINITY)
    assert asked == [(limits.UNLIMITED_TARGET, resource.RLIM_INFINITY)]


def test_a_refused_raise_keeps_the_soft_limit_and_refuses_a_fleet_too_big(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _limits(monkeypatch, 256, 4096, refuse=True)
    assert limits.raise_file_limit() == (256, 4096)
    with pytest.raises(TooManyFiles, match="needs about 300 open files .* only 256"):
        limits.require_open_files(300, 236)


def test_hosts_behind_a_proxy_command_count_its_pipes(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host behind-*\n  ProxyCommand ssh -W %h:%p bastion\n")
    inventory = parse_inventory(
        f"hosts:\n  direct-1: {{address: 10.0.0.1, ssh: {{config: none}}}}\n"
        f"  behind-1: {{ssh: {{config: {config}}}}}\n  behind-2: {{ssh: {{config: {config}}}}}\n"
    )
    hosts = [inventory.resolve_host(name) for name in ("direct-1", "behind-1", "behind-2")]
    assert descriptors_for(hosts) == BASE_DESCRIPTORS + 1 + 2 * PROXY_COMMAND_DESCRIPTORS
