"""The hook program's waits and signals under dash and busybox sh: durations sent as sh reads
them, SIGKILL after exactly the grace asked for (a large one and a fraction too), and `collect`
never waiting on a process that merely got the supervisor's pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.cli.main import cli
from orchestrator.engine.remote import COLLECT_MARGIN_SECONDS, HOOK_RESULT_SLACK, RemoteHost
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import parse_hook
from orchestrator.hostproto.requests import MAX_SECONDS, hook_tail_argument, seconds_argument
from orchestrator.hostproto.scripts import program, runner_program
from orchestrator.models.hosts import HostSpec
from orchestrator.state.process import start_of
from orchestrator.transport.base import CommandResult, HostSession, ScriptCall
from tests.unit.host_programs import SHELLS, run_channel, run_one, shell

WAIT = 30.0  # seconds: far longer than anything here takes; only a broken program reaches it


def _tenths_function() -> str:
    text = program("hook")
    start = text.index("tenths() {")
    return text[start : text.index("\n}\n", start) + 3]


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False) | st.integers(0, 10**12))
@example(1_000_000.0)
@example(0.5)
@example(0.0001)
@example(1e-300)
@example(float("inf"))
def test_durations_are_plain_decimals_never_shortened(seconds: float) -> None:
    sent = seconds_argument(seconds)
    assert re.fullmatch(r"\d+(\.\d{1,3})?", sent), sent
    value = float(sent)
    assert value >= min(seconds, MAX_SECONDS) - 1e-9
    assert value <= min(seconds, MAX_SECONDS) + 0.001


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_sh_reads_every_duration_sent_in_tenths_rounded_up(sh: str) -> None:
    values = [0, 0.04, 0.1, 0.5, 0.55, 1, 9.999, 10, 1_000_000, 123456.789, MAX_SECONDS]
    sent = [seconds_argument(v) for v in values]
    script = _tenths_function() + 'for s; do tenths "$s"; echo "$tenths"; done'
    done = subprocess.run(
        [*shell(sh), "-c", script, "sh", *sent], capture_output=True, timeout=WAIT, check=True
    )
    expected = [str(-(-round(float(s) * 1000) // 100)) for s in sent]
    assert done.stdout.decode().split() == expected, done.stderr


def _wait_for(path: Path) -> None:
    """Until ``path`` holds a whole line (the supervisor creates its .hookpid, then writes it)."""
    deadline = time.monotonic() + WAIT
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)  # a file another process writes: polled, bounded by WAIT


def _end(runner: subprocess.Popen[bytes], base: str) -> None:
    """Whatever a failed test left running: the runner, and the hook's process group (only
    then: once the runner has ended, the group's number may name another group)."""
    if runner.poll() is not None:
        return
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int(Path(base + ".hookpid").read_text()), signal.SIGKILL)
    runner.kill()
    runner.wait(timeout=WAIT)


@pytest.fixture
def hook_dir(tmp_path: Path) -> Path:
    archive = tmp_path / "root" / "g-1" / "d-1" / "deployment-archive"
    archive.mkdir(parents=True)
    return tmp_path


def _start_hook(sh: str, root: Path, body: str, grace: str) -> tuple[subprocess.Popen[bytes], str]:
    """``hook start`` in a runner of its own, in the background."""
    archive = root / "root" / "g-1" / "d-1" / "deployment-archive"
    script = archive / "hook.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    base = str(root / "root" / "g-1" / "d-1" / "hooks" / "AfterInstall.0")
    args = (str(root / "root"), "g-1", "d-1", "AfterInstall", str(script), "hook.sh", "300", "")
    call = ScriptCall("hook", ("start", base, hook_tail_argument(), *args, str(archive), grace))
    secret = framing.new_secret()
    process = subprocess.Popen(
        [*shell(sh), "-c", runner_program(), "runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    process.stdin.write(framing.secret_line(secret) + framing.runner_request((call,), 0))
    process.stdin.close()
    return process, base


class _Recorder:
    """A session that records the programs called instead of running them."""

    def __init__(self) -> None:
        self.calls: list[ScriptCall] = []
        self.timeouts: list[float | None] = []

    async def call(
        self, *calls: ScriptCall, timeout: float | None = None, **_: object
    ) -> CommandResult:
        self.calls.extend(calls)
        self.timeouts.append(timeout)
        secret = framing.new_secret()
        return framing.channel_result(
            0, framing.marker(secret, "hook") + b"status=0 Success\n", b"", secret
        )


def _abort_call(root: Path, grace: float) -> ScriptCall:
    recorder = _Recorder()
    spec = cast(HostSpec, SimpleNamespace(name="h", deployment_root=str(root)))
    remote = RemoteHost(cast(HostSession, recorder), spec, "g-1")
    asyncio.run(remote.abort_hook("d-1", "AfterInstall", 0, grace))
    (call,) = recorder.calls
    return call


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_large_grace_is_read_and_a_hook_that_ends_on_sigterm_ends_the_abort(
    sh: str, hook_dir: Path
) -> None:
    """--hook-kill-grace 1000000 went to the host as 1e+06: the abort's arithmetic failed after
    the SIGTERM, so it never sent SIGKILL nor said it aborted."""
    ready = hook_dir / "ready"
    body = f"echo > {ready}\nwhile :; do sleep 1; done\n"
    runner, base = _start_hook(sh, hook_dir, body, "5")
    try:
        _wait_for(ready)
        _wait_for(Path(base + ".hookpid"))
        # What `--hook-kill-grace 1000000` and `stop --force` send, as RemoteHost formats it.
        aborted = run_channel(sh, _abort_call(hook_dir / "root", 1_000_000))
        assert aborted.exit_status == 0, aborted.stderr
        assert aborted.stdout.strip() == "aborted"
        assert runner.wait(timeout=WAIT) == 0
        assert "terminated" in Path(base + ".status").read_text()
    finally:
        _end(runner, base)


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_sigkill_comes_after_a_fractional_grace_not_at_once(sh: str, hook_dir: Path) -> None:
    """A hook whose every process ignores SIGTERM gets SIGKILL 0.5 s later (``${grace%.*}`` made
    that 0 s: no grace at all)."""
    ready = hook_dir / "ready"
    body = f"trap '' TERM\necho > {ready}\nwhile :; do sleep 1; done\n"
    runner, base = _start_hook(sh, hook_dir, body, "300")  # the supervisor's own grace: not it
    try:
        _wait_for(ready)
        _wait_for(Path(base + ".hookpid"))
        began = time.monotonic()
        aborted = run_channel(sh, ScriptCall("hook", ("abort", base, "0.5")))
        took = time.monotonic() - began
        assert aborted.stdout.strip() == "aborted", aborted.stderr
        assert took >= 0.5  # a lower bound: a slow machine only makes it longer
        assert runner.wait(timeout=WAIT) == 0
        assert Path(base + ".status").read_text().startswith("status=137 ")
    finally:
        _end(runner, base)


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a supervisor: what a supervisor's pid may name after a reboot
    or once pids wrapped around."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait(timeout=WAIT)


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_collect_does_not_wait_on_a_process_that_got_the_supervisors_pid(
    sh: str, tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    base = tmp_path / "hooks" / "AfterInstall.0"
    base.parent.mkdir()
    start = start_of(stranger.pid)
    assert start is not None
    ticks = int(start.rsplit(":", 1)[1])
    base.with_name("AfterInstall.0.pid").write_text(f"{stranger.pid} {ticks - 1}\n")
    call = ScriptCall("hook", ("collect", str(base), hook_tail_argument(), "300"))
    hook = parse_hook(run_one(sh, call))
    assert hook is not None and hook.error_code == "UnknownError"
    assert hook.message == "the hook supervisor ended without a result"
    # The same process, recorded with its own start: it is waited for, but only as long as asked.
    base.with_name("AfterInstall.0.pid").write_text(f"{stranger.pid} {ticks}\n")
    call = ScriptCall("hook", ("collect", str(base), hook_tail_argument(), "0.4"))
    hook = parse_hook(run_one(sh, call))
    assert hook is not None and hook.error_code == "UnknownError"
    assert (
        hook.message == f"the hook supervisor (process {stranger.pid}) gave no result within 0.4 s"
    )


def test_collect_start_and_abort_are_bounded_on_the_controller_too() -> None:
    """The host bounds its wait by LIMIT; the controller waits for its answer a little longer,
    then gives up on a host that does not answer (CommandTimeout)."""
    recorder = _Recorder()
    spec = cast(HostSpec, SimpleNamespace(name="h", deployment_root="/r"))
    remote = RemoteHost(cast(HostSession, recorder), spec, "g-1")
    asyncio.run(remote.collect_hook("d-1", "AfterInstall", 0, 1_000_070.5))
    (call,) = recorder.calls
    assert call.args[-1] == "1000070.5"
    assert recorder.timeouts == [1_000_070.5 + COLLECT_MARGIN_SECONDS]
    # Starting a hook and aborting one are bounded too: by the hook's timeout and grace.
    asyncio.run(
        remote.run_hook(
            deployment_id="d-1", event="AfterInstall", index=0, script="/s", location="s",
            timeout=30, runas=None, archive="/a", grace=0.5, env={},
        )
    )  # fmt: skip
    asyncio.run(remote.abort_hook("d-1", "AfterInstall", 0, 0.5))
    assert recorder.timeouts[1:] == [
        30 + 0.5 + HOOK_RESULT_SLACK + COLLECT_MARGIN_SECONDS,
        0.5 + COLLECT_MARGIN_SECONDS,
    ]


@pytest.mark.parametrize("grace", ["nan", "inf", "-1", "1e10", "ten"])
def test_a_grace_sh_could_not_read_is_a_usage_error(grace: str) -> None:
    result = CliRunner().invoke(cli, ["rollout", "--resume", "d-X", "--hook-kill-grace", grace])
    assert result.exit_code == 2
    assert "--hook-kill-grace" in result.stderr
