"""The integration tier: real OpenSSH sshd hosts on loopback, started by the lab code.

These tests never skip: without sshd the fixture fails and says how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.fleet import Lab

# ORCHESTRATOR_TEST_LAB_NET (default 127.43) keeps two test runs on one machine apart.
_NET = os.environ.get("ORCHESTRATOR_TEST_LAB_NET", "127.43")
if not _NET.startswith("127."):
    raise ValueError(f"ORCHESTRATOR_TEST_LAB_NET={_NET!r} is outside 127.0.0.0/8")
# One /24 per lab (a test lab has at most 200 hosts): 256 labs per run.
_BASES = (f"{_NET}.{block}.0" for block in range(256))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def lab_base() -> str:
    """A base address of this test run's network that no other lab of the run uses."""
    base = next(_BASES, None)
    if base is None:
        raise RuntimeError(f"this test run started more than 256 labs on {_NET}.0.0/16")
    return base


def start_lab(directory: Path, count: int, **options: Any) -> Lab:
    return Lab.up(directory, count, base_address=lab_base(), **options)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Five hosts shared by the tests that do not harm them."""
    fleet = start_lab(tmp_path_factory.mktemp("lab"), 5)
    yield fleet
    fleet.down()


@pytest.fixture
def small_lab(tmp_path: Path) -> Iterator[Lab]:
    """Two hosts of a test's own, for fault injection."""
    fleet = start_lab(tmp_path / "lab", 2)
    yield fleet
    fleet.down()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Lab]:
    """Five fresh hosts for a test that deploys."""
    lab = start_lab(tmp_path / "fleet", 5)
    yield lab
    lab.down()
