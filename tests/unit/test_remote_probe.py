"""The probe's report, run by sh here and read by the engine's parser: every mix of what a host
holds (an appspec with or without its last newline, a cleanup file, neither, an appspec gone).

What travels over SSH is covered by the integration tests; this is the program's own output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.remote import MISSING_APPSPEC, parse_probe
from orchestrator.lab import toolbox
from orchestrator.transport.remote import host_tools, program
from tests.paths import REPO

SH = shutil.which("sh") or "/bin/sh"
APPSPEC = "version: 0.0\nos: linux"


def _probe(root: Path) -> str:
    done = subprocess.run(
        [SH, "-c", program("probe"), "probe", str(root), "g-1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("appspec", ["none", "with newline", "without newline", "gone"])
@pytest.mark.parametrize("cleanup", [True, False])
def test_the_probe_reports_the_last_install_and_its_cleanup_file(
    tmp_path: Path, appspec: str, cleanup: bool
) -> None:
    root = tmp_path / "root"
    instructions = root / "deployment-instructions"
    instructions.mkdir(parents=True)
    last = root / "g-1" / "d-1"
    (last / "deployment-archive").mkdir(parents=True)
    if appspec != "none":
        (instructions / "g-1_last_successful_install").write_text(f"{last}\n")
    if appspec in ("with newline", "without newline"):
        text = APPSPEC + ("\n" if appspec == "with newline" else "")
        (last / "deployment-archive" / "appspec.yml").write_text(text)
    if cleanup:
        (instructions / "g-1-cleanup").write_text("/srv/a\n/srv/a/b\n")

    probe = parse_probe(_probe(root))

    assert probe.cleanup == (("/srv/a", "/srv/a/b") if cleanup else ())
    expected = {
        "none": None,
        "with newline": APPSPEC + "\n",
        "without newline": APPSPEC,
        "gone": MISSING_APPSPEC,
    }[appspec]
    assert probe.old_appspec == expected
    assert probe.last_successful == (None if appspec == "none" else str(last))


def test_the_probe_names_the_commands_the_host_lacks_and_stops(tmp_path: Path) -> None:
    lacking = ("setsid", "stat")
    path = toolbox.only(tmp_path / "bin", [t for t in host_tools() if t not in lacking])
    root = tmp_path / "root"
    done = subprocess.run(
        [SH, "-c", program("probe"), "probe", str(root), "g-1"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(path)},
    )
    assert done.returncode == 3  # the request's lock is not taken
    assert done.stdout == "missing_tools=setsid stat\n"
    assert parse_probe(done.stdout).missing_tools == lacking


def test_a_host_with_every_command_reports_none_missing(tmp_path: Path) -> None:
    path = toolbox.only(tmp_path / "bin", host_tools())
    done = subprocess.run(
        [SH, "-c", program("probe"), "probe", str(tmp_path / "root"), "g-1"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(path)},
    )
    assert done.returncode == 0, done.stderr
    assert parse_probe(done.stdout).missing_tools == ()


def test_the_readme_lists_the_commands_the_probe_checks() -> None:
    listed = ", ".join(f"`{tool}`" for tool in host_tools())
    assert listed in " ".join((REPO / "README.md").read_text().split())
