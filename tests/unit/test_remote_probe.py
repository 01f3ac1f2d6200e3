"""The probe's report, run by sh here and read by the engine's parser: every mix of what a host
holds (an appspec with or without its last newline, a cleanup file, neither, an appspec gone).
The cleanup file never travels: Install reads it on the host.

What travels over SSH is covered by the integration tests; this is the program's own output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import parse_probe
from orchestrator.hostproto.scripts import channel_program, host_tools, runner_program
from orchestrator.lab import toolbox
from orchestrator.transport.base import CommandResult, ScriptCall
from tests.paths import REPO
from tests.unit.host_programs import run_one

APPSPEC = "version: 0.0\nos: linux"
# An absolute path: the probe runs with a PATH of its own.
SH = shutil.which("dash") or "/bin/sh"


def _probe(root: Path) -> CommandResult:
    return run_one("dash", ScriptCall("probe", (str(root), "g-1")))


@pytest.mark.parametrize("appspec", ["none", "with newline", "without newline", "gone"])
@pytest.mark.parametrize("cleanup", [True, False])
def test_the_probe_reports_the_last_install_and_never_its_cleanup_file(
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

    output = _probe(root)
    probe = parse_probe(output)

    assert "/srv/a" not in output.stdout
    assert all(b"/srv/a" not in data for _, data in output.frames)
    expected = {
        "none": None,
        "with newline": APPSPEC + "\n",
        "without newline": APPSPEC,
        "gone": None,
    }[appspec]
    assert (probe.old_appspec, probe.appspec_missing) == (expected, appspec == "gone")
    assert probe.last_successful == (None if appspec == "none" else str(last))


def _probe_with_path(root: Path, path: Path) -> tuple[int, CommandResult]:
    """The probe on a channel of its own, its PATH holding only ``path``."""
    secret = framing.new_secret()
    done = subprocess.run(
        [SH, "-c", channel_program("probe"), "probe", str(root), "g-1"],
        input=framing.secret_line(secret),
        capture_output=True,
        check=False,
        env={"PATH": str(path)},
    )
    return done.returncode, framing.channel_result(
        done.returncode, done.stdout, done.stderr, secret
    )


def test_the_probe_names_the_commands_the_host_lacks_and_stops(tmp_path: Path) -> None:
    lacking = ("setsid", "stat")
    path = toolbox.only(tmp_path / "bin", [t for t in host_tools() if t not in lacking])
    code, result = _probe_with_path(tmp_path / "root", path)
    assert code == 3  # the request's lock is not taken
    assert result.frames == (("probe", b"missing_tools=setsid stat\n"),)
    assert parse_probe(result).missing_tools == lacking


def test_a_host_with_every_command_reports_none_missing(tmp_path: Path) -> None:
    path = toolbox.only(tmp_path / "bin", host_tools())
    code, result = _probe_with_path(tmp_path / "root", path)
    assert code == 0, result.stderr
    assert parse_probe(result).missing_tools == ()


def test_the_readme_lists_the_commands_the_probe_checks() -> None:
    listed = ", ".join(f"`{tool}`" for tool in host_tools())
    assert listed in " ".join((REPO / "README.md").read_text().split())


def test_a_host_without_mktemp_is_told_by_the_runner(tmp_path: Path) -> None:
    """The runner needs mktemp before the probe can run: it names it itself."""
    path = toolbox.only(tmp_path / "bin", [t for t in host_tools() if t != "mktemp"])
    done = subprocess.run(
        [SH, "-c", runner_program(), "runner"],
        input=framing.secret_line(framing.new_secret()),
        capture_output=True,
        check=False,
        env={"PATH": str(path)},
    )
    assert done.returncode == 1
    assert b"the host lacks mktemp, which orchestrator runs on every host" in done.stderr
