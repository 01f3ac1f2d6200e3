"""The hook program where requests cross, under dash and busybox sh, made deterministic by
stand-ins for `timeout` and `setsid` on PATH that act at the exact moment the race is about:
`stop --force` arriving before a hook starts, or while its supervisor starts it (no pid to
signal yet); and a `hook start` whose connection died before the runner launched the
supervisor, sent again or collected while the first is still on its way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from orchestrator.engine.host import HostJob, HostRun
from orchestrator.engine.remote import Probe, RemoteHost
from orchestrator.errors import Unreachable
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import HookResult, parse_hook
from orchestrator.hostproto.requests import hook_tail_argument
from orchestrator.hostproto.scripts import channel_program, runner_program
from orchestrator.models.appspec import HookScript
from orchestrator.models.results import Target
from orchestrator.transport.base import ScriptCall
from tests.unit.host_programs import SHELLS, run_channel, shell

# busybox sh runs its own applets (setsid, timeout) before PATH: the stand-ins need dash.
STAND_IN_SHELLS = ["dash"]
WAIT = 30.0  # seconds: far longer than anything here takes; only a broken program reaches it
FOREVER = "while :; do sleep 1; done\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "g-1" / "d-1" / "deployment-archive").mkdir(parents=True)
    return tmp_path


def _base(root: Path) -> str:
    return str(root / "root" / "g-1" / "d-1" / "hooks" / "AfterInstall.0")


def _start_call(root: Path, body: str, grace: str = "0.5") -> ScriptCall:
    archive = root / "root" / "g-1" / "d-1" / "deployment-archive"
    script = archive / "hook.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    args = (str(root / "root"), "g-1", "d-1", "AfterInstall", str(script), "hook.sh", "300", "")
    return ScriptCall(
        "hook", ("start", _base(root), hook_tail_argument(), *args, str(archive), grace)
    )


def _runner(sh: str, call: ScriptCall, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``call`` in a runner of its own, in the background; its reply on stdout."""
    secret = framing.new_secret()
    process = subprocess.Popen(
        [*shell(sh), "-c", runner_program(), "runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    assert process.stdin is not None
    process.stdin.write(framing.secret_line(secret) + framing.runner_request((call,), 0))
    process.stdin.close()
    process.stdin = None  # communicate() then only reads
    process.secret = secret  # type: ignore[attr-defined]
    return process


def _reply(process: subprocess.Popen[bytes]) -> HookResult:
    out, _ = process.communicate(timeout=WAIT)
    secret: str = process.secret  # type: ignore[attr-defined]
    # The runner's reply: the program's stdout, then the frame "exit N".
    body = out.split(framing.marker(secret, "exit"), 1)[0]
    hook = parse_hook(framing.channel_result(0, body, b"", secret))
    assert hook is not None, out
    return hook


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)  # a file another process writes: polled, bounded by WAIT


@contextlib.contextmanager
def _cleanup(root: Path) -> Iterator[None]:
    try:
        yield
    finally:
        hookpid = Path(_base(root) + ".hookpid")
        if hookpid.exists() and not Path(_base(root) + ".done").exists():
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(hookpid.read_text()), signal.SIGKILL)


def _stand_in(bin_dir: Path, name: str, act: str, *, gnu: bool = True) -> None:
    """``name`` on PATH: runs ``act`` when it starts the hook (not the supervisor, not for
    `--version`), then the real command. ``gnu=False``: `timeout --version` says nothing, so the
    runner uses busybox's way (setsid and a watcher)."""
    real = shutil.which(name)
    assert real is not None
    version = f'exec {real} "$@"' if gnu else "exit 1"
    (bin_dir / name).write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {version}\n'
        f'[ "${{4:-}}" = hook-supervisor ] || {{ {act}; }}\n'
        f'exec {real} "$@"\n'
    )
    (bin_dir / name).chmod(0o755)


def _abort_command(sh: str, root: Path, grace: str) -> str:
    """`hook abort` as the controller sends it on a channel of its own, as a command line."""
    program = root / "abort.sh"
    program.write_text(channel_program("hook"))
    secret = root / "secret"
    secret.write_bytes(framing.secret_line(framing.new_secret()))
    return (
        f'{" ".join(shell(sh))} -c "$(cat {program})" hook abort {_base(root)} {grace}'
        f" < {secret} > {root / 'abort.out'} 2>&1"
    )


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_hook_aborted_before_it_starts_does_not_run(sh: str, root: Path) -> None:
    """stop --force reached the host before the hook's start did (no .hookpid to signal): the
    hook ran to its end, however long."""
    aborted = run_channel(sh, ScriptCall("hook", ("abort", _base(root), "0.5")))
    assert aborted.exit_status == 0, aborted.stderr
    ran = root / "ran"
    with _cleanup(root):
        hook = _reply(_runner(sh, _start_call(root, f": > {ran}\n{FOREVER}"), {}))
    assert hook.error_code == "ScriptFailed"
    assert "was not run: the deployment was stopped with --force" in hook.message
    assert not ran.exists()


@pytest.mark.parametrize("way", ["timeout", "setsid"])
@pytest.mark.parametrize("sh", STAND_IN_SHELLS)
def test_a_hook_aborted_while_its_supervisor_starts_it_is_terminated(
    sh: str, way: str, root: Path
) -> None:
    """The abort comes after the supervisor checked for it and before it wrote the hook's pid:
    the abort finds nothing to signal, the supervisor must see it and terminate the hook."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, way, _abort_command(sh, root, "0.5"), gnu=way == "timeout")
    if way == "setsid":
        _stand_in(bin_dir, "timeout", "", gnu=False)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    ready = root / "ready"
    with _cleanup(root):
        runner = _runner(sh, _start_call(root, f": > {ready}\n{FOREVER}"), env)
        hook = _reply(runner)
    assert hook.error_code == "ScriptFailed", (hook, (root / "abort.out").read_text())
    assert "terminated: the deployment was stopped with --force" in hook.message


@pytest.mark.parametrize("again", ["start", "collect"])
@pytest.mark.parametrize("sh", STAND_IN_SHELLS)
def test_a_start_cut_off_before_its_supervisor_runs_the_hook_once(
    sh: str, again: str, root: Path
) -> None:
    """The connection died after `hook start` reached the host, before its runner launched the
    supervisor (held here until `go` appears). The controller, reconnected, collects (which
    answered NotStarted, taken as the hook's result: "the hook runner printed no result") or
    starts it again (which ran it a second time): both must wait for the first start's hook."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    held, go = root / "held", root / "go"
    real = shutil.which("setsid")
    (bin_dir / "setsid").write_text(
        "#!/bin/sh\n"
        f'if [ "${{4:-}}" = hook-supervisor ] && [ ! -e {held} ]; then\n'
        f"    : > {held}\n"
        f"    i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (bin_dir / "setsid").chmod(0o755)
    # The second request's first step when it finds the first one's claim: it has decided.
    adopting = root / "adopting"
    (bin_dir / "readlink").write_text(
        f'#!/bin/sh\n: > {adopting}\nexec {shutil.which("readlink")} "$@"\n'
    )
    (bin_dir / "readlink").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    runs = root / "runs"
    start = _start_call(root, f"echo run >> {runs}\necho hello\n")
    with _cleanup(root):
        first = _runner(sh, start, env)
        _wait_for(held)
        if again == "start":
            second = _runner(sh, start, env)
        else:
            collect = ("collect", _base(root), hook_tail_argument(), "300")
            second = _runner(sh, ScriptCall("hook", collect), env)
        # Released once the second request has answered or waits for the first's claim.
        deadline = time.monotonic() + WAIT
        while second.poll() is None and not adopting.exists():
            assert time.monotonic() < deadline, "the second request neither answered nor waited"
            time.sleep(0.02)  # polled, bounded by WAIT
        go.write_text("")
        # The first runner's connection is gone: its reply is read only to end it.
        first.communicate(timeout=WAIT)
        hook = _reply(second)
    assert hook.error_code == "Success", hook
    assert hook.stdout == "hello\n"
    assert runs.read_text() == "run\n"


class _Remote:
    """A host whose first `hook start` request was cut off before it got there."""

    def __init__(self) -> None:
        self.starts = 0
        self.aborts = 0

    def deployment_dir(self, deployment_id: str) -> str:
        return f"/r/g-1/{deployment_id}"

    async def run_hook(self, **_: object) -> HookResult:
        self.starts += 1
        if self.starts == 1:
            raise Unreachable("h", "the connection closed while a hook ran")
        return HookResult(0, "Success", "ok", "", "hello\n", "")

    async def collect_hook(self, *_: object) -> HookResult:
        secret = framing.new_secret()
        reply = framing.marker(secret, "hook") + b"status=-1 NotStarted\n"
        hook = parse_hook(framing.channel_result(0, reply, b"", secret))
        assert hook is not None
        return hook

    async def abort_hook(self, *_: object) -> None:
        self.aborts += 1


def _host_run(remote: _Remote, forced: bool) -> HostRun:
    async def reconnect(old: object) -> object:
        return old

    job = SimpleNamespace(
        deployment=SimpleNamespace(deployment_id="d-1", application="a", group="g"),
        revision=SimpleNamespace(sha256="0" * 64, commit=None),
        hook_grace=0.5,
        reconnect=reconnect,
        forced=lambda: forced,
    )
    return HostRun(
        cast(HostJob, job), cast(Target, None), cast(RemoteHost, remote), cast(Probe, None)
    )


def test_a_start_that_never_reached_the_host_is_sent_again_not_reported_as_the_result() -> None:
    """After a failed start the host answered NotStarted, which the engine took as the hook's
    result ("the hook runner printed no result"); the host's claim makes sending it again safe."""
    remote = _Remote()
    result = asyncio.run(
        _host_run(remote, False)._hook("AfterInstall", 0, HookScript(location="s"), "/a")
    )
    assert result.ok, result
    assert remote.starts == 2


def test_no_hook_starts_once_the_deployment_is_forced_to_stop() -> None:
    remote = _Remote()
    result = asyncio.run(
        _host_run(remote, True)._hook("AfterInstall", 0, HookScript(location="s"), "/a")
    )
    assert result.error_code == "ScriptFailed"
    assert "was not run: the deployment was stopped with --force" in result.message
    assert remote.starts == 0
