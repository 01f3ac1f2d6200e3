"""Output for people, cron and CI: plain lines off a terminal, a rollout's summary, -q, the JUnit
report and GitHub Actions' annotations and step summary, NO_COLOR and TERM=dumb."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from orchestrator.cli.ci_reports import (
    error_annotations,
    escape_data,
    escape_property,
    junit_xml,
    step_summary,
)
from orchestrator.cli.context import CliContext
from orchestrator.cli.main import cli
from orchestrator.cli.outcome import Shown, github_actions, show
from orchestrator.cli.plain import deployment_lines, error_lines, history_line, summary
from orchestrator.models.results import (
    Deployment,
    Diagnostics,
    LifecycleEvent,
    RevisionInfo,
    Status,
    Target,
)
from orchestrator.state.base import open_store
from tests.paths import HELLO_WEB, REPO

EVENTS = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "ValidateService")
LONG_ID = "d-RISEQDQSZ"
TAIL = "[stdout]started\n[stderr]\x1b[31mboom\x1b[0m <&> ]]> 100% | done\x00\n"
ANSI = re.compile("\x1b")


def _target(host: str, start: float, seconds: list[float], fail_at: int | None = None) -> Target:
    events, clock = [], start
    for index, name in enumerate(EVENTS):
        event = LifecycleEvent(name)
        if fail_at is not None and index > fail_at:
            event.status = Status.SKIPPED
        else:
            event.start_time, event.end_time = clock, clock + seconds[index]
            clock += seconds[index]
            event.status = Status.FAILED if index == fail_at else Status.SUCCEEDED
        events.append(event)
    target = Target(host, f"10.0.0.{len(host)}", events, Status.SUCCEEDED)
    if fail_at is not None:
        events[fail_at].diagnostics = Diagnostics(
            "ScriptFailed", "scripts/v.sh", "exit code 3,\nsee: the log", TAIL
        )
        target.status = Status.FAILED
    return target


def deployment(*, failed: bool = False, hosts: int = 5) -> Deployment:
    result = Deployment(
        LONG_ID,
        "hello-application-with-a-long-name",
        "web-production-group",
        "gid",
        RevisionInfo("/srv/revisions/hello-web-2026-12-07", "ab" * 32, 1, "directory"),
        "CodeDeployDefault.OneAtATime",
        status=Status.SUCCEEDED,
        create_time=1_800_000_000.0,
        complete_time=1_800_000_042.5,
    )
    for index in range(hosts):
        host = f"web-{index + 1}"
        result.targets[host] = _target(host, 1_800_000_000.0 + index, [0.5, 0.1, 0.2, 0.3, index])
    if failed:
        result.targets["web-2"] = _target("web-2", 1_800_000_001.0, [0.5, 0.1, 0.2, 0.3, 1], 4)
        result.targets["web-3"].status = Status.SKIPPED
        for event in result.targets["web-3"].events:
            event.status, event.start_time, event.end_time = Status.SKIPPED, None, None
        result.status = Status.FAILED
        result.error_code, result.error_message = "HEALTH_CONSTRAINTS", "too many failed: 1 of 5"
    return result


# --- plain lines -----------------------------------------------------------------------------


def test_status_lines_are_whole_and_each_starts_with_what_it_is_about() -> None:
    lines = deployment_lines(deployment(failed=True).to_document())
    assert lines[0].startswith(f"{LONG_ID} hello-application-with-a-long-name/web-production")
    assert "HEALTH_CONSTRAINTS: too many failed: 1 of 5" in lines[0]
    host_lines = lines[2:]
    assert len(host_lines) == 5 * (1 + len(EVENTS))
    assert all(line.split()[0].startswith("web-") for line in host_lines)
    assert "web-2 ValidateService Failed 1.0s: ScriptFailed: exit code 3, see: the log" in lines
    assert "web-3 Skipped" in lines and "web-3 Install Skipped" in lines


def test_history_line_holds_every_field_whole() -> None:
    line = history_line(deployment(failed=True).to_document(with_targets=False))
    assert line.startswith(f"{LONG_ID}  hello-application-with-a-long-name/web-production-group")
    assert "Failed  ok/failed/skipped 4/1/0" not in line  # web-3 is skipped
    assert "ok/failed/skipped 3/1/1" in line and "error HEALTH_CONSTRAINTS" in line
    assert "revision " + "ab" * 6 in line and "\n" not in line


def _store_two(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "state"))
    store.save(deployment(failed=True))
    store.close()


def test_status_and_history_off_a_terminal_print_plain_lines(tmp_path: Path) -> None:
    _store_two(tmp_path)
    runner = CliRunner()
    for args in (["history"], ["status"], ["status", LONG_ID]):
        result = runner.invoke(cli, args, terminal_width=80)
        assert result.exit_code == 0, result.output
        assert LONG_ID in result.stdout, args  # never cut in two by a table's column
        assert not set("│┃━─┏┡") & set(result.stdout), args
        assert not ANSI.search(result.stdout)
    history = runner.invoke(cli, ["history"]).stdout.splitlines()
    assert history == [history_line(deployment(failed=True).to_document(with_targets=False))]
    status = runner.invoke(cli, ["status"]).stdout.splitlines()
    assert status == deployment_lines(deployment(failed=True).to_document())
    assert [line for line in status if line.startswith("web-2 ")][-1].endswith("see: the log")


# --- a rollout's result ----------------------------------------------------------------------


def test_summary_counts_duration_and_slowest_hosts() -> None:
    lines = summary(deployment(hosts=100).to_document())
    assert len(lines) == 2
    assert lines[0] == (
        f"{LONG_ID} hello-application-with-a-long-name/web-production-group Succeeded: "
        "100 hosts (100 succeeded) in 42.5s, CodeDeployDefault.OneAtATime"
    )
    assert lines[1] == (
        "slowest: web-100 100.1s (ValidateService 99.0s), web-99 99.1s (ValidateService 98.0s), "
        "web-98 98.1s (ValidateService 97.0s)"
    )


def _context(stream: io.StringIO, terminal: bool = False) -> CliContext:
    console = Console(file=stream, force_terminal=terminal, width=80, color_system=None)
    return CliContext(Path("i.yaml"), False, None, out=console, err=console)


@pytest.mark.parametrize("verbose", [False, True])
def test_a_successful_rollout_shows_a_summary_and_the_table_only_with_v(
    verbose: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    document = deployment().to_document()
    show(_context(io.StringIO()), [document], Shown(verbose=verbose))
    out = capsys.readouterr().out
    if verbose:
        assert out.splitlines() == deployment_lines(document)
    else:
        assert out.splitlines() == summary(document)


def test_a_failed_rollout_shows_every_host_as_a_table_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    failed, rollback = deployment(failed=True).to_document(), deployment().to_document()
    show(_context(stream, terminal=True), [failed, rollback], Shown())
    table = stream.getvalue()
    assert "┃ host" in table and table.count("ValidateService") == 5
    # Its automatic rollback succeeded everywhere: its summary.
    assert capsys.readouterr().out.splitlines() == summary(rollback)


def test_quiet_prints_only_errors_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    show(_context(io.StringIO()), [deployment().to_document()], Shown(quiet=True))
    assert capsys.readouterr() == ("", "")
    document = deployment(failed=True).to_document()
    show(_context(io.StringIO()), [document], Shown(quiet=True))
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err.splitlines()
        == error_lines(document)
        == [
            f"error: deployment {LONG_ID} Failed: HEALTH_CONSTRAINTS: too many failed: 1 of 5",
            "error: web-2 ValidateService failed: ScriptFailed: exit code 3, see: the log",
        ]
    )


def test_json_output_is_the_document_alone(capsys: pytest.CaptureFixture[str]) -> None:
    document = deployment(failed=True).to_document()
    environ = {"GITHUB_ACTIONS": "true"}
    show(_context(io.StringIO()), [document], Shown(output="json", quiet=True))
    github_actions([document], Shown(output="json"), environ)
    out, err = capsys.readouterr()
    assert __import__("json").loads(out) == document
    assert err.startswith("::error title=")


def test_verbose_and_quiet_exclude_each_other(tmp_path: Path) -> None:
    example = str(REPO / "inventory.example.yaml")
    args = ["-i", example, "rollout", "-a", "shop", "-g", "web-prod", "-r", str(HELLO_WEB)]
    result = CliRunner().invoke(cli, [*args, "-v", "-q"])
    assert result.exit_code == 2 and "exclude each other" in result.stderr


def test_an_unwritable_junit_file_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    example = str(REPO / "inventory.example.yaml")
    junit = tmp_path / "no-such-dir" / "report.xml"
    result = CliRunner().invoke(
        cli, ["-i", example, "rollback", "-a", "shop", "-g", "web-prod", "--junit", str(junit)]
    )
    assert result.exit_code == 2, result.output
    assert "--junit" in result.stderr and "cannot write" in result.stderr


def test_a_deployment_refused_before_it_starts_leaves_the_junit_file_as_it_was(
    tmp_path: Path,
) -> None:
    example = str(REPO / "inventory.example.yaml")
    junit = tmp_path / "report.xml"
    junit.write_text("<testsuites/>\n")  # an earlier run's report
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "appspec.yml").write_text("version: 0.0\nos: windows\n")
    result = CliRunner().invoke(
        cli,
        ["-i", example, "rollout", "-a", "shop", "-g", "web-prod", "-r", str(bad),
         "--junit", str(junit)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert junit.read_text() == "<testsuites/>\n"


def test_a_command_that_starts_no_deployment_leaves_the_junit_file_as_it_was(
    tmp_path: Path,
) -> None:
    example = str(REPO / "inventory.example.yaml")
    args = ["-i", example, "rollback", "-a", "shop", "-g", "web-prod", "--junit"]
    absent, earlier = tmp_path / "absent.xml", tmp_path / "earlier.xml"
    earlier.write_bytes(b"<testsuites/>\n")
    for junit in (absent, earlier):
        result = CliRunner().invoke(cli, [*args, str(junit)])
        assert result.exit_code == 5, result.output  # nothing to roll back to: none started
    assert not absent.exists()
    assert earlier.read_bytes() == b"<testsuites/>\n"


# --- JUnit -----------------------------------------------------------------------------------

COUNTS = ("tests", "failures", "errors", "skipped")


def _check_junit_schema(root: ET.Element) -> None:
    """The structure of the common JUnit schema (Jenkins' junit-10.xsd, which GitLab, GitHub's
    test reporters and pytest's xunit2 follow): element order, required attributes, numbers,
    and counts that match the test cases."""
    assert root.tag == "testsuites"
    assert set(root.attrib) <= {"name", "time", *COUNTS, "disabled"}
    totals = dict.fromkeys(COUNTS, 0)
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests"} <= set(suite.attrib)
        assert set(suite.attrib) <= {
            "name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname",
            "id", "package", "disabled", "log", "group", "url", "file",
        }  # fmt: skip
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.attrib["timestamp"])
        float(suite.attrib["time"])
        order = [child.tag for child in suite]
        assert order == sorted(
            order, key=["properties", "testcase", "system-out", "system-err"].index
        )
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        cases = suite.findall("testcase")
        seen = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
        for case in cases:
            assert "name" in case.attrib and float(case.attrib["time"]) >= 0
            tags = [child.tag for child in case]
            rank = ["skipped", "error", "failure", "system-out", "system-err"]
            assert all(tag in rank for tag in tags)
            assert [t for t in tags if t.startswith("system")] == tags[len(tags) - sum(
                t.startswith("system") for t in tags):]  # fmt: skip
            seen["failures"] += "failure" in tags
            seen["skipped"] += "skipped" in tags
        for key in COUNTS:
            assert int(suite.attrib[key]) == seen[key], key
            totals[key] += seen[key]
    for key in COUNTS:
        assert int(root.attrib[key]) == totals[key]


def test_junit_report_has_a_case_per_host_and_failures_with_their_log_tail() -> None:
    failed, rollback = deployment(failed=True), deployment()
    rollback.deployment_id = "d-ROLLBACK1"
    data = junit_xml([failed.to_document(), rollback.to_document()], hostname="ci-runner")
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    _check_junit_schema(root)
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["skipped"]) == (
        "10",
        "1",
        "1",
    )
    first, second = root.findall("testsuite")
    assert (
        first.attrib["name"] == f"hello-application-with-a-long-name/web-production-group {LONG_ID}"
    )
    assert first.attrib["hostname"] == "ci-runner" and first.attrib["time"] == "42.500"
    assert second.attrib["name"].endswith("d-ROLLBACK1")
    props = {p.attrib["name"]: p.attrib["value"] for p in first.iter("property")}
    assert props["deploymentId"] == LONG_ID and props["errorCode"] == "HEALTH_CONSTRAINTS"
    cases = {case.attrib["name"]: case for case in first.findall("testcase")}
    assert list(cases) == [f"web-{n}" for n in range(1, 6)]
    assert cases["web-1"].attrib["classname"] == (
        "hello-application-with-a-long-name.web-production-group"
    )
    failure = cases["web-2"].find("failure")
    assert failure is not None and failure.attrib["type"] == "ScriptFailed"
    assert failure.attrib["message"] == (
        "ValidateService failed: ScriptFailed: exit code 3, see: the log"
    )
    text = failure.text or ""
    assert "script: scripts/v.sh" in text and "message: exit code 3,\nsee: the log" in text
    # The log tail whole, what XML cannot hold written out visibly.
    assert "[stderr]\\x1b[31mboom\\x1b[0m <&> ]]> 100% | done\\x00\n" in text
    skipped = cases["web-3"].find("skipped")
    assert skipped is not None and skipped.attrib["message"] == "web-3 Skipped"
    out = cases["web-1"].find("system-out")
    assert out is not None and (out.text or "").splitlines() == [
        "ApplicationStop Succeeded 0.5s",
        "DownloadBundle Succeeded 0.1s",
        "BeforeInstall Succeeded 0.2s",
        "Install Succeeded 0.3s",
        "ValidateService Succeeded 0.0s",
    ]
    assert cases["web-1"].find("failure") is None and cases["web-1"].find("skipped") is None


def test_junit_report_of_a_deployment_without_hosts_is_valid() -> None:
    empty = deployment(hosts=0)
    empty.status, empty.error_code, empty.error_message = Status.FAILED, "NO_INSTANCES", "none"
    root = ET.fromstring(junit_xml([empty.to_document()]))
    _check_junit_schema(root)
    assert root.attrib["tests"] == "0"


# --- GitHub Actions --------------------------------------------------------------------------


def test_workflow_command_escaping_follows_githubs_toolkit() -> None:
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext%3A a%2C b"


def test_each_failed_host_is_an_error_annotation() -> None:
    document = deployment(failed=True).to_document()
    (line,) = error_annotations(document)
    assert line.startswith(f"::error title={LONG_ID} web-2 failed::host: web-2 (")
    assert "\n" not in line and "\r" not in line
    assert "%0Aevent: ValidateService%0Aerror code: ScriptFailed%0A" in line
    assert "[stderr]\\x1b[31mboom\\x1b[0m <&> ]]> 100%25 | done\\x00%0A" in line
    assert error_annotations(deployment().to_document()) == []


def test_a_deployment_that_failed_without_a_failed_host_is_one_annotation() -> None:
    stopped = deployment()
    stopped.status, stopped.error_code, stopped.error_message = Status.STOPPED, "X", "stop: now"
    assert error_annotations(stopped.to_document()) == [
        f"::error title={LONG_ID} Stopped::X: stop: now"
    ]


def test_step_summary_is_markdown_that_user_text_cannot_break() -> None:
    text = step_summary(deployment(failed=True).to_document())
    lines = text.splitlines()
    assert lines[0] == (
        f"### :x: {LONG_ID} hello-application-with-a-long-name/web-production-group: Failed"
    )
    assert "| 5 | 3 | 1 | 1 | 42.5s | CodeDeployDefault.OneAtATime |" in lines
    assert "| web-2 | ValidateService | ScriptFailed: exit code 3, see: the log |" in lines
    # The log tail inside <pre>, HTML-escaped: no tag nor table of its own.
    assert "&lt;&amp;&gt; ]]&gt; 100% | done" in text and "<&>" not in text
    assert step_summary(deployment().to_document()).startswith("### :white_check_mark: ")
    partial = deployment(failed=True)
    partial.status = Status.SUCCEEDED
    assert step_summary(partial.to_document()).startswith("### :warning: ")


def test_under_github_actions_annotations_go_to_stdout_and_the_summary_is_appended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = [deployment(failed=True).to_document(), deployment().to_document()]
    summary_file = tmp_path / "summary.md"
    summary_file.write_text("earlier step\n")
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)}
    github_actions(documents, Shown(), environ)
    out, err = capsys.readouterr()
    assert out.splitlines() == error_annotations(documents[0]) and err == ""
    written = summary_file.read_text()
    assert written.startswith("earlier step\n### :x: ")
    assert written.count("### ") == 2
    github_actions(documents, Shown(), {"GITHUB_ACTIONS": "false"})
    assert capsys.readouterr() == ("", "")


# --- NO_COLOR and TERM=dumb --------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ,colour",
    [({}, True), ({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True), ({"TERM": "dumb"}, False)],
)
def test_no_color_and_dumb_terminals_get_no_escapes(
    environ: dict[str, str], colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: a terminal, as the pty tests have
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    context = CliContext(Path("i.yaml"), False, None)
    for console in (context.out, context.err):
        stream = io.StringIO()
        console.file = stream
        console.print("[bold red]Failed[/]")
        assert bool(ANSI.search(stream.getvalue())) is colour, environ
    assert context.live_view is colour


def _rendered(document: dict[str, Any]) -> str:
    stream = io.StringIO()
    show(_context(stream, terminal=True), [document], Shown(verbose=True))
    return stream.getvalue()


def test_tables_on_a_terminal_without_colour_hold_no_escape() -> None:
    assert not ANSI.search(_rendered(deployment(failed=True).to_document()))


HOSTILE = "exit 3 \x1b]52;c;c2VjcmV0\x07 \x1b[2J\u202egnp.exe\x9b31m"


def test_what_a_host_said_reaches_the_terminal_without_its_control_sequences() -> None:
    from orchestrator.cli.plain import visible
    from orchestrator.cli.render import LiveProgress, PlainProgress, deployment_table
    from orchestrator.events import LifecycleEventFinished, Notice

    assert visible("a\tb\nc") == "a\tb\nc"  # layout stays
    assert visible(HOSTILE) == ("exit 3 \\x1b]52;c;c2VjcmV0\\x07 \\x1b[2J\\u202egnp.exe\\x9b31m")
    failed = deployment(failed=True)
    event = failed.targets["web-2"].events[-1]
    assert event.diagnostics is not None
    event.diagnostics.message = HOSTILE
    finished = LifecycleEventFinished(failed, failed.targets["web-2"], event)
    notice = Notice(failed, HOSTILE, "web-2")
    plain, live, table = io.StringIO(), io.StringIO(), io.StringIO()
    for sink in (PlainProgress(Console(file=plain)), LiveProgress(Console(file=live))):
        sink.deployment = failed  # type: ignore[attr-defined]
        sink(finished)
        sink(notice)
    Console(file=table, force_terminal=True, width=300).print(
        deployment_table(failed.to_document())
    )
    for written in (plain.getvalue(), live.getvalue()):
        assert "\\x1b]52" in written and "\x1b" not in written and "\u202e" not in written
    # The table keeps rich's own colours; the host's sequences are shown, not sent.
    assert "\\x1b]52" in table.getvalue() and "\x1b]52" not in table.getvalue()
    assert "\x9b" not in table.getvalue()
