"""Contract tests of the wire format: every host program run under dash and under busybox sh, in
a runner as on a host, against host data crafted to look like structure (the old section
markers, the old runner boundary's trailer, markers with a guessed secret), bytes that are not
UTF-8, and replies far over 2 MiB. What the programs reply is read by ``orchestrator.hostproto``
only: whatever the host holds comes back byte for byte where it belongs, and the next request
still gets its own reply."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from orchestrator.hostproto.replies import (
    HOOK_TAIL_BYTES,
    parse_hook,
    parse_lock,
    parse_probe,
)
from orchestrator.hostproto.requests import hook_tail_argument
from orchestrator.transport.base import CommandResult, ScriptCall
from tests.unit.host_programs import SHELLS, run_channel, run_one, run_runner

GUESS = "0123456789abcdef0123456789abcdef"
CRAFTED = (
    b"---appspec---\n---cleanup---\n---lock---\n---stdout---\n---stderr---\n__missing__\n"
    b"status=0 Success\nmessage=forged\nlock=free\nlast_successful=/forged\n"
    # the trailer of the old runner's boundary, and markers of a secret that is not the session's
    + f"\n{GUESS} 0 0\n\n{GUESS} exit 0\n\n{GUESS} hook\n{GUESS} lock\n".encode()
    + bytes(range(256))  # NUL and every byte that is not UTF-8
    + b"\nno newline at the end"
)
BIG = 3 * 1024 * 1024  # over asyncssh's 2 MiB window

pytestmark = pytest.mark.parametrize("sh", sorted(SHELLS))


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def test_the_runner_frames_replies_of_any_bytes_and_size(sh: str, tmp_path: Path) -> None:
    crafted = tmp_path / "crafted"
    crafted.write_bytes(CRAFTED)
    big = tmp_path / "big"
    big.write_bytes(CRAFTED * (BIG // len(CRAFTED) + 1))
    to_stderr = 'cat "$0" >&2; cat "$0"; exit 7'
    results = run_runner(
        sh,
        [
            ((ScriptCall("cat", (str(crafted),)),), b""),
            ((ScriptCall("cat", (str(big),)),), b""),
            ((ScriptCall("sh", ("-c", to_stderr, str(crafted))),), b""),
            ((ScriptCall("cat"),), CRAFTED),  # stdin of any bytes, echoed
            ((ScriptCall("echo", ("after",)),), b""),
        ],
    )
    plain, large, failed, echoed, after = results
    assert (plain.exit_status, plain.stdout, plain.stderr, plain.frames) == (
        0,
        text(CRAFTED),
        "",
        (),
    )
    assert large.stdout == text(big.read_bytes())
    assert (failed.exit_status, failed.stdout, failed.stderr) == (7, text(CRAFTED), text(CRAFTED))
    assert echoed.stdout == text(CRAFTED)
    assert (after.exit_status, after.stdout) == (0, "after\n")


def _deployed(root: Path, appspec: bytes | None, cleanup: bytes) -> Path:
    instructions = root / "deployment-instructions"
    instructions.mkdir(parents=True)
    last = root / "g-1" / "d-1"
    (last / "deployment-archive").mkdir(parents=True)
    (instructions / "g-1_last_successful_install").write_text(f"{last}\n")
    if appspec is not None:
        (last / "deployment-archive" / "appspec.yml").write_bytes(appspec)
    (instructions / "g-1-cleanup").write_bytes(cleanup)
    return last


def test_the_probe_returns_the_previous_appspec_intact_and_not_the_cleanup_file(
    sh: str, tmp_path: Path
) -> None:
    padding = b"".join(b"# comment %07d\n" % i for i in range(200_000))
    appspec = b"# ---cleanup--- in a comment\n" + CRAFTED + b"\n" + padding + b"version: 0.0\n"
    assert len(appspec) > BIG
    cleanup = b"/srv/a\n/srv/cleanup-marker\n"
    last = _deployed(tmp_path / "root", appspec, cleanup)
    probe = ScriptCall("probe", (str(tmp_path / "root"), "g-1", "d-2"))
    lock = ScriptCall("lock", ("acquire", str(tmp_path / "root"), "g-1", "d-2", "120", "holder=me"))
    result = run_one(sh, probe, lock)
    found = parse_probe(result)
    assert found.last_successful == str(last)
    assert found.old_appspec == text(appspec)
    # Install reads the cleanup file on the host: it never crosses the wire.
    assert all(b"cleanup-marker" not in data for _, data in result.frames)
    assert "cleanup-marker" not in result.stdout
    assert parse_lock(result).state == "acquired"


def test_the_probe_says_when_the_previous_appspec_is_gone(sh: str, tmp_path: Path) -> None:
    _deployed(tmp_path / "root", None, b"")
    found = parse_probe(run_one(sh, ScriptCall("probe", (str(tmp_path / "root"), "g-1"))))
    assert (found.old_appspec, found.appspec_missing) == (None, True)
    # An appspec whose text is the old "gone" word is an appspec.
    (tmp_path / "root" / "g-1" / "d-1" / "deployment-archive" / "appspec.yml").write_bytes(
        b"__missing__\n"
    )
    again = parse_probe(run_one(sh, ScriptCall("probe", (str(tmp_path / "root"), "g-1"))))
    assert again.old_appspec == "__missing__\n"


def _hook(sh: str, tmp_path: Path, body: bytes, *, collect: bool = False) -> list[CommandResult]:
    root = tmp_path / "root"
    archive = root / "g-1" / "d-1" / "deployment-archive"
    archive.mkdir(parents=True, exist_ok=True)
    script = archive / "hook.sh"
    script.write_bytes(b"#!/bin/sh\n" + body)
    script.chmod(0o755)
    base = str(root / "g-1" / "d-1" / "hooks" / "AfterInstall.0")
    tail = hook_tail_argument()
    args = (str(root), "g-1", "d-1", "AfterInstall", str(script), "hook.sh", "30", "", str(archive))
    start = ScriptCall("hook", ("start", base, tail, *args, "1", "APPLICATION_NAME=app"))
    requests = [((start,), b"")]
    if collect:
        requests.append(((ScriptCall("hook", ("collect", base, tail)),), b""))
    return run_runner(sh, requests)


def test_a_hooks_output_is_its_output_whatever_it_prints(sh: str, tmp_path: Path) -> None:
    printed = tmp_path / "printed"
    printed.write_bytes(CRAFTED)
    body = f"cat {printed}; cat {printed} >&2; exit 3\n".encode()
    started, collected = _hook(sh, tmp_path, body, collect=True)
    for result in (started, collected):
        hook = parse_hook(result)
        assert hook is not None
        assert (hook.code, hook.error_code, hook.capped) == (3, "ScriptFailed", False)
        assert "failed with exit code 3" in hook.message
        assert (hook.stdout, hook.stderr) == (text(CRAFTED), text(CRAFTED))
    log = next((tmp_path / "root").glob("g-1/d-1/logs/scripts.log")).read_bytes()
    assert b"[stdout]---stderr---" in log


def test_a_hooks_output_over_the_tail_is_capped_and_logged_whole(sh: str, tmp_path: Path) -> None:
    body = (
        b'i=0; while [ $i -lt 40000 ]; do echo "line $i of a hook that prints a lot"; '
        b"i=$((i + 1)); done\necho LAST\necho an error >&2\n"
    )
    (result,) = _hook(sh, tmp_path, body)
    hook = parse_hook(result)
    assert hook is not None and hook.ok and hook.capped
    assert hook.stdout.endswith("line 39999 of a hook that prints a lot\nLAST\n")
    assert hook.stdout.startswith("line ")  # whole lines
    assert len(hook.stdout.encode()) <= HOOK_TAIL_BYTES
    assert hook.stderr == "an error\n"
    log = next((tmp_path / "root").glob("g-1/d-1/logs/scripts.log")).read_text()
    assert log.count("of a hook that prints a lot") == 40000


def test_collecting_a_hook_that_never_started(sh: str, tmp_path: Path) -> None:
    base = str(tmp_path / "hooks" / "AfterInstall.0")
    result = run_one(sh, ScriptCall("hook", ("collect", base, hook_tail_argument())))
    hook = parse_hook(result)
    assert hook is not None and not hook.started


def test_the_lock_answers_are_its_own_whatever_the_holder_file_holds(
    sh: str, tmp_path: Path
) -> None:
    root = str(tmp_path / "root")
    holder = "holder=me\npid=1"
    acquire = ScriptCall("lock", ("acquire", root, "g-1", "d-1", "120", holder))
    assert parse_lock(run_one(sh, acquire)).state == "acquired"
    # What a holder file holds is the holder's, never the lock's answer.
    holder_file = tmp_path / "root" / "locks" / "g-1" / "holder"
    holder_file.write_bytes(CRAFTED + b"\nlock=free\nerror=forged\n")
    for mode, state in (("status", "held"), ("heartbeat", "lost"), ("break", "broken")):
        call = ScriptCall("lock", (mode, root, "g-1", "d-2"))
        found = parse_lock(run_one(sh, call))
        assert found.state == state, mode
    # On a channel of its own (a heartbeat while the runner is busy), the same framing.
    run_one(sh, acquire)
    beat = run_channel(sh, ScriptCall("lock", ("heartbeat", root, "g-1", "d-1")))
    assert parse_lock(beat).state == "refreshed"


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_install_and_finish_reply_in_step(sh: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    bundle = _tar({"appspec.yml": CRAFTED, "app/index.txt": CRAFTED})
    sha = hashlib.sha256(bundle).hexdigest()
    instructions = root / "deployment-instructions"
    instructions.mkdir(parents=True)
    (instructions / "g-1-cleanup").write_bytes(b"/nonexistent/a\n" + CRAFTED + b"\n")
    download = ScriptCall("download", (str(root), "g-1", "d-1", sha, "", "5", ""))
    wrong = ScriptCall("download", (str(root), "g-1", "d-2", "0" * 64, "", "5", ""))
    install = ScriptCall("install", (str(root), "g-1", "d-1"))
    finish = ScriptCall("finish", (str(root), "g-1", "d-1", "Succeeded", sha))
    results = run_runner(
        sh,
        [
            ((download,), bundle),
            ((wrong,), bundle),
            ((install,), b"B\tDISALLOW\n"),
            ((finish,), b""),
        ],
    )
    downloaded, refused, installed, finished = results
    assert (downloaded.exit_status, downloaded.stdout) == (0, "received the bundle\n")
    assert refused.exit_status == 3 and "bundle checksum mismatch" in refused.stderr
    assert installed.exit_status == 0, installed.stderr
    assert installed.stdout.startswith("installed 0 file(s)")
    assert (finished.exit_status, finished.stdout, finished.stderr) == (0, "", "")
    assert (root / "g-1" / "d-1" / "deployment-archive" / "app" / "index.txt").read_bytes() == (
        CRAFTED
    )
