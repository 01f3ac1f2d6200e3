"""The integration tier: real OpenSSH sshd hosts on loopback, started by the lab code.

These tests never skip: without sshd the fixture fails and says how to install it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.fleet import Lab

# ORCHESTRATOR_TEST_LAB_NET (default 127.43) keeps two test runs on one machine apart.
_NET = os.environ.get("ORCHESTRATOR_TEST_LAB_NET", "127.43")
if not _NET.startswith("127."):
    raise ValueError(f"ORCHESTRATOR_TEST_LAB_NET={_NET!r} is outside 127.0.0.0/8")
# One /24 per lab (a test lab has at most 200 hosts), reused in turn once the suite has started
# more labs than that (a lab is down long before its block comes round again, and every lab picks
# free ports anyway).
_BASES = (f"{_NET}.{block}.0" for block in itertools.cycle(range(256)))


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


DEPLOY_USER = "orchestrator-deploy"


@pytest.fixture
def sudo_user() -> Iterator[str]:
    """A non-root SSH user that reaches root through passwordless sudo, as on many fleets."""
    if os.geteuid() != 0 or shutil.which("sudo") is None:
        pytest.fail("become: sudo needs root and sudo on the lab machine (.ci/run installs sudo)")
    try:
        pwd.getpwnam(DEPLOY_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", DEPLOY_USER],
            check=True,
        )
    # "*": no password, but not locked ("!"), which sshd without PAM refuses.
    subprocess.run(["usermod", "-p", "*", DEPLOY_USER], check=True)
    rule = Path(f"/etc/sudoers.d/{DEPLOY_USER}")
    rule.write_text(f"{DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    yield DEPLOY_USER
