"""The probe's report, run by sh here and read by the engine's parser: every mix of what a host
holds (an appspec with or without its last newline, a cleanup file, neither, an appspec gone).
The cleanup file never travels: Install reads it on the host.

What travels over SSH is covered by the integration tests; this is the program's own output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.transport.base import CommandResult, ProgramCall
from orchestrator.transport.remote.wire import MISSING_APPSPEC, parse_probe
from tests.unit.host_programs import run_one

APPSPEC = "version: 0.0\nos: linux"


def _probe(root: Path) -> CommandResult:
    return run_one("dash", ProgramCall("probe", (str(root), "g-1")))


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
        "gone": MISSING_APPSPEC,
    }[appspec]
    assert probe.old_appspec == expected
    assert probe.last_successful == (None if appspec == "none" else str(last))
