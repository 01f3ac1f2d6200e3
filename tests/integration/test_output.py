"""What people, cron and CI see of real rollouts: piped output, -q, --junit, GitHub Actions,
NO_COLOR and TERM=dumb, and the live view in a real pseudo-terminal."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.lab.fleet import Lab
from tests.integration.revisions import failing_validate, hello_web
from tests.unit.test_output import _check_junit_schema

WAIT = 120
ESC = b"\x1b"


def _env(**changes: str) -> dict[str, str]:
    unset = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(changes)
    return env


def piped(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``orchestrator ARGS`` with stdout and stderr pipes, as under cron or in a CI job."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
        env=_env(COLUMNS="80", **env),  # what a table would wrap at
        stdin=subprocess.DEVNULL,
    )


def in_pty(args: list[str], **env: str) -> tuple[int, bytes]:
    """``orchestrator ARGS`` on a real pseudo-terminal of 120x40 (stdin, stdout, stderr): its
    exit code and every byte the terminal received, read until the last writer closed it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(**env),
        start_new_session=True,
    )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + WAIT
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{args}: still writing after {WAIT}s: {bytes(received)!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # Linux: EIO once every writer closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            received += data
        return process.wait(timeout=WAIT), bytes(received)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def _rollout(lab: Lab, revision: Path, *args: str) -> list[str]:
    return ["-i", str(lab.inventory_path), "rollout", "-a", "hello", "-g", "web", "-r", str(revision), *args]  # fmt: skip


def test_piped_rollout_history_and_status_print_whole_lines(small_lab: Lab, tmp_path: Path) -> None:
    deployed = piped(_rollout(small_lab, hello_web(tmp_path)))
    assert deployed.returncode == 0, deployed.stderr
    summary = deployed.stdout.splitlines()
    assert len(summary) == 2, deployed.stdout  # not 7 rows per host
    deployment_id = summary[0].split()[0]
    assert summary[0] == (
        f"{deployment_id} hello/web Succeeded: 2 hosts (2 succeeded) in "
        f"{summary[0].split(' in ')[1].split('s,')[0]}s, CodeDeployDefault.OneAtATime"
    )
    assert summary[1].startswith("slowest: web-")
    assert "web-1: ValidateService Succeeded" in deployed.stderr  # the progress lines, as before
    assert ESC not in (deployed.stdout + deployed.stderr).encode()
    history = piped(["history"])
    assert history.returncode == 0
    (line,) = history.stdout.splitlines()
    assert line.startswith(f"{deployment_id}  hello/web  Succeeded  ok/failed/skipped 2/0/0  ")
    status = piped(["status"])
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0] == f"{deployment_id} hello/web Succeeded"
    assert [line.split()[:3] for line in lines[2:5]] == [
        ["web-1", "Succeeded"],
        ["web-1", "ApplicationStop", "Succeeded"],
        ["web-1", "DownloadBundle", "Succeeded"],
    ]
    grepped = [line for line in lines if line.startswith("web-2 ValidateService ")]
    assert len(grepped) == 1 and grepped[0].split()[2] == "Succeeded"
    for output in (history.stdout, status.stdout):
        assert not set("│┃━─") & set(output) and ESC not in output.encode()


def test_a_failed_rollout_under_github_actions_with_junit_and_q(
    small_lab: Lab, tmp_path: Path
) -> None:
    web2 = small_lab.hosts[1].address
    revision = failing_validate(tmp_path, [web2])
    junit, summary = tmp_path / "report.xml", tmp_path / "summary.md"
    quiet = piped(
        _rollout(small_lab, revision, "-q", "--junit", str(junit)),
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    assert quiet.returncode in (4, 5), quiet.stderr
    # -q: no progress, no summary; the annotations on stdout, the errors on stderr.
    (annotation,) = quiet.stdout.splitlines()
    assert annotation.startswith("::error title=d-")
    assert " web-2 failed::host: web-2 (" in annotation
    assert f"failing on purpose on {web2}" in annotation and "%0A" in annotation
    errors = quiet.stderr.splitlines()
    assert errors and all(line.startswith("error: ") for line in errors), quiet.stderr
    assert "error: web-2 ValidateService failed: ScriptFailed: " in quiet.stderr
    root = ET.parse(junit).getroot()
    _check_junit_schema(root)
    assert (root.attrib["tests"], root.attrib["failures"]) == ("2", "1")
    cases = {case.attrib["name"]: case for case in root.iter("testcase")}
    failure = cases["web-2"].find("failure")
    assert failure is not None and failure.attrib["type"] == "ScriptFailed"
    assert f"failing on purpose on {web2}" in (failure.text or "")  # the log tail
    assert cases["web-1"].find("failure") is None
    out = cases["web-1"].find("system-out")
    assert out is not None and "ValidateService Succeeded" in (out.text or "")
    written = summary.read_text()
    assert (
        written.startswith(("### :x: d-", "### :warning: d-"))
        and "| web-2 | ValidateService | ScriptFailed" in written
    )
    # Without -q, off a terminal: the failure in full, as whole lines.
    loud = piped(_rollout(small_lab, revision))
    assert loud.returncode in (4, 5), loud.stderr
    assert "web-2 ValidateService Failed" in loud.stdout
    assert "\nweb-1 ValidateService " in loud.stdout
    assert "::error" not in loud.stdout and summary.read_text() == written


def test_the_live_view_in_a_real_terminal(small_lab: Lab, tmp_path: Path) -> None:
    code, screen = in_pty(_rollout(small_lab, hello_web(tmp_path)), TERM="xterm-256color")
    assert code == 0, screen
    assert b"\x1b[?25l" in screen and b"\x1b[?25h" in screen  # the live view hid its cursor
    assert b"2/2 done" in screen and b"2 ok" in screen  # its last frame
    assert b"\x1b[1m" in screen  # styled
    text = screen.decode()
    assert "hello/web Succeeded: 2 hosts (2 succeeded)" in text and "slowest: web-" in text
    assert "ValidateService Succeeded (" not in text  # no plain progress lines
    code, table = in_pty(["status"], TERM="xterm-256color")
    assert code == 0 and ESC in table
    assert "┃ host " in re.sub("\x1b\\[[0-9;]*m", "", table.decode())
    code, history = in_pty(["history", "--limit", "1"], TERM="xterm-256color")
    assert code == 0 and "1 deployment(s)" in history.decode()


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "TERM": "xterm-256color"}, {"TERM": "dumb"}])
def test_no_color_and_dumb_terminals_get_no_escape(
    env: dict[str, str], small_lab: Lab, tmp_path: Path
) -> None:
    web2 = small_lab.hosts[1].address
    code, screen = in_pty(_rollout(small_lab, failing_validate(tmp_path, [web2])), **env)
    assert code in (4, 5), screen
    assert ESC not in screen, screen
    text = screen.decode()
    assert "web-1: ValidateService Succeeded (" in text  # plain progress lines instead
    assert "web-2: ValidateService Failed (" in text
    assert "┃ host" in text  # the failure's table, on a terminal
    for args in (["status"], ["history"]):
        code, shown = in_pty(args, **env)
        assert code == 0 and ESC not in shown, shown
        assert "┃" in shown.decode()
