"""Contract tests of the host protocol's types (``orchestrator.hostproto``): every request type
renders the arguments its program reads and is read back from them; every reply type renders the
sections its parser reads; and each request, run by the real program under dash and under
busybox sh (in a runner, or on a channel of its own, as on a host), gets the reply its type says.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from orchestrator.hostproto import framing
from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.replies import (
    CONTROLLER_STATES,
    Frames,
    HookResult,
    LastDeployment,
    LockReply,
    LockState,
    Probe,
    parse_hook,
    parse_lock,
    parse_probe,
)
from orchestrator.hostproto.requests import (
    DownloadRequest,
    FinishRequest,
    HookAbort,
    HookCollect,
    HookStart,
    HostRequest,
    InstallRequest,
    LockMode,
    LockRequest,
    ProbeRequest,
    RenderedRequest,
    parse_call,
)
from orchestrator.hostproto.scripts import PROGRAMS
from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.transport.base import CommandResult, ScriptCall
from tests.unit.host_programs import SHELLS, fetch_tool, run_channel, run_runner

REQUESTS: list[HostRequest] = [
    ProbeRequest("/r", "g-1"),
    ProbeRequest("/r", "g-1", "d-1"),
    ProbeRequest("/r x", "g 1", "d-1", 1_048_577),
    LockRequest(LockMode.ACQUIRE, "/r", "g-1", "d-1", 120, LockHolder(holder="me@x", pid=1)),
    LockRequest(LockMode.ACQUIRE, "/r", "g-1", "d-1", 120, LockHolder.here(), "d-0"),
    LockRequest(LockMode.ACQUIRE, "/r", "g-1", "d-1", 120, LockHolder()),
    LockRequest(LockMode.HEARTBEAT, "/r", "g-1", "d-1"),
    LockRequest(LockMode.RELEASE, "/r", "g-1", "d-1"),
    LockRequest(LockMode.STATUS, "/r", "g-1"),
    LockRequest(LockMode.BREAK, "/r", "g-1"),
    DownloadRequest("/r", "g-1", "d-1", "ab" * 32, None, 5, None),
    DownloadRequest("/r", "g-1", "d-1", "ab" * 32, "/r/g-1/d-0/bundle.tar", 5, "/r/g-1/d-0"),
    DownloadRequest("/r", "g-1", "d-1", "ab" * 32, None, 5, "/r/g-1/d-0", "curl"),
    DownloadRequest("/r", "g-1", "d-1", "ab" * 32, None, 5, None, "wget"),
    InstallRequest("/r", "g-1", "d-1"),
    RenderedRequest("/r", "g-1", "d-1"),
    HookStart(
        "/r/g-1/d-1/hooks/AfterInstall.0",
        "/r",
        "g-1",
        "d-1",
        "AfterInstall",
        "/a/s.sh",
        "s.sh",
        300.0,
        None,
        "/a",
        1.5,
        (("APPLICATION_NAME", "app"), ("X", "a=b")),
    ),
    HookStart("/b", "/r", "g-1", "d-1", "Install", "/a/s", "s", 1e6, "bob", "/a", 0.25),
    HookCollect("/r/g-1/d-1/hooks/AfterInstall.0"),
    HookCollect("/r/g-1/d-1/hooks/AfterInstall.0", 12.5),
    HookAbort("/r/g-1/d-1/hooks/AfterInstall.0", 0.5),
    FinishRequest("/r", "g-1", "d-1", "Succeeded", "ab" * 32),
    FinishRequest("/r", "g-1", "d-1", None, "ab" * 32),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_each_request_is_read_back_from_its_call(request_: HostRequest) -> None:
    call = request_.call()
    assert call.name in PROGRAMS
    assert all(isinstance(arg, str) for arg in call.args)
    assert parse_call(call) == request_


def test_a_call_of_no_program_of_ours_is_no_request() -> None:
    with pytest.raises(ValueError, match="not a host program"):
        parse_call(ScriptCall("cat", ("/etc/passwd",)))


def test_the_arguments_are_in_the_order_the_programs_read_them() -> None:
    """Spot checks against the programs' usage lines (the host runs are below)."""
    assert LockRequest(LockMode.STATUS, "/r", "g").call() == ScriptCall(
        "lock", ("status", "/r", "g", "-")
    )
    assert FinishRequest("/r", "g", "d", None, "s").argv() == ("/r", "g", "d", "-", "s")
    assert HookCollect("/b", 0.04).argv() == ("collect", "/b", "65537", "0.04")
    assert DownloadRequest("/r", "g", "d", "s", None, 5, None).argv()[4:] == ("", "5", "")
    fetched = DownloadRequest("/r", "g", "d", "s", None, 5, None, "curl")
    assert fetched.argv()[4:] == ("", "5", "", "curl")


def _read(frames: Frames) -> CommandResult:
    secret = framing.new_secret()
    return framing.channel_result(0, framing.encode(secret, frames), b"", secret)


@pytest.mark.parametrize(
    "reply",
    [
        Probe(),
        Probe(missing_tools=("setsid", "stat")),
        Probe(
            last_successful="/r/g-1/d-0",
            last_deployment=LastDeployment("d-0", "Succeeded", "ab" * 32),
            bundles=(("ab" * 32, "/r/g-1/d-0/bundle.tar"), ("cd" * 32, "/r/g-1/d x/bundle.tar")),
            old_appspec="version: 0.0\nos: linux\n",
            ongoing_event="BeforeInstall",
        ),
        Probe(last_successful="/r/g-1/d-0", appspec_missing=True),
        Probe(last_successful="/r/g-1/d-0", old_appspec="__missing__"),
    ],
)
def test_a_probe_reply_is_read_as_it_was_rendered(reply: Probe) -> None:
    assert parse_probe(_read(reply.frames())) == reply


@pytest.mark.parametrize(
    "reply",
    [
        *(LockReply(state) for state in LockState if state not in CONTROLLER_STATES),
        LockReply.of(LockState.HELD, deployment="d-OTHER"),
        LockReply.of(LockState.FAILED, error="No space left on device"),
        LockReply(LockState.TOOK_OVER, LockHolder("d-0", "me@x", 1, "2026-12-07T00:00:00Z", 7)),
        LockReply(LockState.UNKNOWN, raw="sideways"),
        LockReply(LockState.UNKNOWN, raw="unreachable"),
    ],
)
def test_a_lock_reply_is_read_as_it_was_rendered(reply: LockReply) -> None:
    assert parse_lock(_read(reply.frames())) == reply


@pytest.mark.parametrize(
    "reply",
    [
        HookResult(0, LifecycleErrorCode.SUCCESS, "ok", "", "fine\n", ""),
        HookResult(
            1, LifecycleErrorCode.SCRIPT_FAILED, "failed with exit code 1", "a warning", "", "boom"
        ),
        HookResult(-1, LifecycleErrorCode.UNKNOWN_ERROR, "", "", "", "", started=False),
    ],
)
def test_a_hook_reply_is_read_as_it_was_rendered(reply: HookResult) -> None:
    assert parse_hook(_read(reply.frames())) == reply


def test_replies_the_controller_cannot_read_are_typed_too() -> None:
    sideways = parse_lock(_read((("lock", b"lock=sideways\n"),)))
    assert (sideways.state, sideways.raw, sideways.shown) == (
        LockState.UNKNOWN,
        "sideways",
        "sideways",
    )
    # The controller's own states are never a host's answer.
    for state in CONTROLLER_STATES:
        forged = parse_lock(_read((("lock", f"lock={state.value}\n".encode()),)))
        assert (forged.state, forged.raw) == (LockState.UNKNOWN, state.value)
    garbled = parse_hook(_read((("hook", b"status=2 Forged\n"),)))
    assert garbled is not None and garbled.error_code is LifecycleErrorCode.UNKNOWN_ERROR
    assert (garbled.recorded_code, garbled.ok) == ("Forged", False)
    blank = parse_hook(_read((("hook", b"status=2 \n"),)))
    assert blank is not None and blank.recorded_code == LifecycleErrorCode.UNKNOWN_ERROR.value


def test_numbers_that_are_digits_but_not_ascii_are_no_numbers() -> None:
    """ "²".isdigit() is True and int("²") raises: a host's reply must not crash the parser."""
    held = parse_lock(
        _read(
            (
                ("lock", b"lock=held\n"),
                ("lock-holder", "pid=\u00b2\nheartbeat_age=\u0663\n".encode()),
            )
        )
    )
    assert held.state is LockState.HELD
    assert held.holder is not None and (held.holder.pid, held.holder.heartbeat_age) == (None, None)
    for status in ("\u00b2 Succeeded", "-\u00b2 Succeeded", "--1 Succeeded"):
        hook = parse_hook(_read((("hook", f"status={status}\n".encode()),)))
        assert hook is not None and hook.code == 5, status
    assert LockHolder.from_lines("pid=\u00b2").pid is None


def test_a_lock_call_that_replied_nothing_failed_for_its_stderr() -> None:
    """No frame "lock" (the program never ran, or died first) is a lock that failed, not a
    state nobody knows: ``lock release`` then fails (exit 1) instead of passing."""
    died = parse_lock(CommandResult(2, "", "sh: 1: lock: Permission denied\n"))
    assert (died.state, died.error, died.ours) == (
        LockState.FAILED,
        "sh: 1: lock: Permission denied",
        False,
    )
    silent = parse_lock(CommandResult(1, "", ""))
    assert silent.state is LockState.FAILED and silent.error and "exit status 1" in silent.error


def test_the_lock_holder_travels_as_lines_and_reads_back() -> None:
    holder = LockHolder("d-1", "me@ctl", 42, "2026-12-07T00:00:00Z")
    assert holder.lines() == "holder=me@ctl\npid=42\nsince=2026-12-07T00:00:00Z"
    assert LockHolder.from_lines(holder.lines()) == LockHolder(None, "me@ctl", 42, holder.since)
    assert holder.describe() == "d-1 (me@ctl, pid 42) since 2026-12-07T00:00:00Z"
    assert LockHolder().describe() == "? (?, pid ?) since ?" and not LockHolder().known
    # This machine's lock file (JSON, the pid a number) reads the same way.
    assert LockHolder.of({"holder": "me@ctl", "deployment": "d-1", "pid": 42}).pid == 42
    assert LockHolder.of({"pid": "not a pid", "heartbeat_age": "7"}) == LockHolder(heartbeat_age=7)


def test_a_request_the_programs_do_not_take_is_a_value_error() -> None:
    for call in (
        ScriptCall("hook", ()),
        ScriptCall("hook", ("sideways", "/b")),
        ScriptCall("hook", ("abort",)),
        ScriptCall("lock", ("acquire", "/r")),
        ScriptCall("lock", ("sideways", "/r", "g", "d")),
        ScriptCall("download", ("/r", "g")),
        ScriptCall("probe", ("/r", "g", "d", "many")),
        ScriptCall("hook", ("start", "/b", "65537", *["x"] * 10, "NOVALUE")),
    ):
        with pytest.raises(ValueError):
            parse_call(call)


def _bundle() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in {
            "appspec.yml": b"version: 0.0\nos: linux\n",
            "run.sh": b"echo hi\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _one(sh: str, request: HostRequest, stdin: bytes = b"") -> CommandResult:
    return run_runner(sh, [((request.call(),), stdin)])[0]


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_deployments_requests_get_their_typed_replies(sh: str, tmp_path: Path) -> None:
    root, gid, did, other = str(tmp_path / "root x"), "g 1", "d-1", "d-2"
    directory = f"{root}/{gid}/{did}"
    archive = f"{directory}/deployment-archive"
    bundle, sha = _bundle()

    probe = ProbeRequest(root, gid, did, 1_048_577)
    acquire = LockRequest(LockMode.ACQUIRE, root, gid, did, 120, LockHolder(holder="me@x"))
    first = run_runner(sh, [((probe.call(), acquire.call()), b"")])[0]
    assert parse_probe(first) == Probe(fetch=fetch_tool())
    assert parse_lock(first) == LockReply(LockState.ACQUIRED)

    download = DownloadRequest(root, gid, did, sha, None, 5, None)
    downloaded = _one(sh, download, bundle)
    assert (downloaded.exit_status, downloaded.stdout, downloaded.frames) == (
        0,
        "received the bundle\n",
        (),
    )
    installed = _one(sh, InstallRequest(root, gid, did), b"B\tDISALLOW\n")
    assert installed.ok and installed.frames == (), installed.stderr
    rendered = io.BytesIO()
    with tarfile.open(fileobj=rendered, mode="w") as archive_of_renderings:
        info = tarfile.TarInfo("0/app.conf")
        info.size = 6
        archive_of_renderings.addfile(info, io.BytesIO(b"port=1"))
    placed = _one(sh, RenderedRequest(root, gid, did), rendered.getvalue())
    assert placed.ok and placed.frames == (), placed.stderr
    assert Path(f"{directory}/rendered/0/app.conf").read_bytes() == b"port=1"

    base = f"{directory}/hooks/AfterInstall.0"
    start = HookStart(
        base,
        root,
        gid,
        did,
        "AfterInstall",
        f"{archive}/run.sh",
        "run.sh",
        30,
        None,
        archive,
        1,
        (("APPLICATION_NAME", "app"),),
    )
    started, collected = run_runner(
        sh, [((start.call(),), b""), ((HookCollect(base, 5).call(),), b"")]
    )
    for result in (started, collected):
        hook = parse_hook(result)
        assert hook is not None
        assert (hook.code, hook.error_code, hook.stdout, hook.stderr) == (
            0,
            LifecycleErrorCode.SUCCESS,
            "hi\n",
            "",
        )
        assert hook.ok and hook.started and not hook.capped
    aborted = _one(sh, HookAbort(base, 0.5))  # over already: nothing to terminate
    assert (aborted.exit_status, aborted.stdout, aborted.frames) == (0, "", ())
    never = parse_hook(_one(sh, HookCollect(f"{directory}/hooks/Install.0", 1)))
    assert never is not None and not never.started and not never.ok

    finished = _one(sh, FinishRequest(root, gid, did, "Succeeded", sha))
    assert (finished.exit_status, finished.stdout, finished.frames) == (0, "", ())
    again = parse_probe(_one(sh, ProbeRequest(root, gid, did)))
    assert again == Probe(
        last_successful=directory,
        last_deployment=LastDeployment(did, "Succeeded", sha),
        bundles=((sha, f"{directory}/bundle.tar"),),
        old_appspec="version: 0.0\nos: linux\n",
        fetch=fetch_tool(),
    )

    held = parse_lock(
        _one(sh, LockRequest(LockMode.ACQUIRE, root, gid, other, 120, LockHolder(holder="b")))
    )
    assert (held.state, held.deployment, held.ours) == (LockState.HELD, did, False)
    assert held.heartbeat_age is not None and held.heartbeat_age >= 0
    assert (held.holder.holder, held.holder.pid) == ("me@x", None)
    lost = parse_lock(_one(sh, LockRequest(LockMode.HEARTBEAT, root, gid, other)))
    assert (lost.state, lost.deployment) == (LockState.LOST, did)
    beat = parse_lock(run_channel(sh, LockRequest(LockMode.HEARTBEAT, root, gid, did).call()))
    assert beat == LockReply(LockState.REFRESHED)
    status = parse_lock(_one(sh, LockRequest(LockMode.STATUS, root, gid)))
    assert (status.state, status.deployment) == (LockState.HELD, did)
    taken = LockRequest(
        LockMode.ACQUIRE, root, gid, other, 120, LockHolder(holder="b"), finished=did
    )
    took = parse_lock(_one(sh, taken))
    assert (took.state, took.deployment, took.ours) == (LockState.TOOK_OVER, did, True)
    not_ours = parse_lock(_one(sh, LockRequest(LockMode.RELEASE, root, gid, did)))
    assert not_ours == LockReply(LockState.NOT_OURS)
    released = parse_lock(_one(sh, LockRequest(LockMode.RELEASE, root, gid, other)))
    assert released == LockReply(LockState.RELEASED)
    free = [LockRequest(mode, root, gid) for mode in (LockMode.STATUS, LockMode.BREAK)]
    assert [parse_lock(_one(sh, request)) for request in free] == [LockReply(LockState.FREE)] * 2
    reacquired = run_runner(sh, [((acquire.call(),), b"")] * 2)
    assert [parse_lock(result).state for result in reacquired] == [
        LockState.ACQUIRED,
        LockState.REACQUIRED,
    ]
    broken = parse_lock(_one(sh, LockRequest(LockMode.BREAK, root, gid)))
    assert (broken.state, broken.deployment) == (LockState.BROKEN, did)


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_failing_hook_and_a_lock_that_cannot_be_written(sh: str, tmp_path: Path) -> None:
    root, gid, did = str(tmp_path / "root"), "g-1", "d-1"
    archive = tmp_path / "archive"
    archive.mkdir()
    script = archive / "fail.sh"
    script.write_text("#!/bin/sh\necho out; echo err >&2; exit 4\n")
    script.chmod(0o755)
    base = f"{root}/{gid}/{did}/hooks/ValidateService.0"
    start = HookStart(
        base,
        root,
        gid,
        did,
        "ValidateService",
        str(script),
        "fail.sh",
        30,
        None,
        str(archive),
        1,
    )
    hook = parse_hook(_one(sh, start))
    assert hook is not None
    assert (hook.code, hook.error_code, hook.stdout, hook.stderr, hook.ok) == (
        4,
        LifecycleErrorCode.SCRIPT_FAILED,
        "out\n",
        "err\n",
        False,
    )
    missing = HookStart(
        f"{base}x",
        root,
        gid,
        did,
        "ValidateService",
        str(archive / "nope.sh"),
        "nope.sh",
        30,
        None,
        str(archive),
        1,
    )
    gone = parse_hook(_one(sh, missing))
    assert gone is not None and gone.error_code is LifecycleErrorCode.SCRIPT_MISSING

    (tmp_path / "root").mkdir(exist_ok=True)
    (tmp_path / "root" / "locks").write_text("a file where the locks' directory goes\n")
    acquire = LockRequest(LockMode.ACQUIRE, root, gid, did, 120, LockHolder(holder="me"))
    failed = parse_lock(_one(sh, acquire))
    assert failed.state is LockState.FAILED and not failed.ours
    assert failed.error
