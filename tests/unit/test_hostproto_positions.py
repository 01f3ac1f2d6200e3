"""Each optional or same-typed argument of a request, where it goes: a request whose type put two
arguments in each other's place (in ``argv`` and ``from_argv`` alike, so that it still reads back)
gets another outcome from the real program under dash here. The request lines themselves are
pinned in ``test_session_script.py``."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from pathlib import Path

from orchestrator.hostproto.replies import parse_hook
from orchestrator.hostproto.requests import DownloadRequest, HookCollect, HookStart
from orchestrator.models.error_codes import LifecycleErrorCode
from tests.unit.host_programs import run_runner

SH = "dash"


def _bundle() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"version: 0.0\nos: linux\n"
        info = tarfile.TarInfo("appspec.yml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def test_a_bundle_on_the_host_is_reused_and_retention_keeps_the_last_successful(
    tmp_path: Path,
) -> None:
    """``existing`` is a bundle.tar, ``last_successful`` a directory, ``max_revisions`` a count:
    swapped, the reuse reads an empty stdin (checksum mismatch) or the retention removes the last
    successful revision."""
    root, gid = str(tmp_path / "root"), "g-1"
    bundle, sha = _bundle()
    first, second = f"{root}/{gid}/d-0", f"{root}/{gid}/d-1"
    fresh = [
        ((DownloadRequest(root, gid, "d-0", sha, None, 5, None).call(),), bundle),
        ((DownloadRequest(root, gid, "d-1", sha, None, 5, first).call(),), bundle),
    ]
    for result in run_runner(SH, fresh):
        assert result.ok and result.stdout.startswith("received the bundle\n"), result.stderr
    (tmp_path / "root" / gid / "d-0").touch()  # d-0 is not the oldest: only the rule keeps it
    reuse = DownloadRequest(root, gid, "d-2", sha, f"{second}/bundle.tar", 1, first)
    [reused] = run_runner(SH, [((reuse.call(),), b"")])
    assert reused.ok, reused.stderr
    assert reused.stdout.splitlines() == [
        f"reused the bundle already on the host: {second}/bundle.tar",
        f"linked the archive unpacked in {second}",
        f"removed old revision directory {second}",
    ]
    # One revision kept besides the last successful one, which is never removed.
    assert sorted(p.name for p in (tmp_path / "root" / gid).iterdir()) == ["d-0", "d-2"]
    assert (tmp_path / "root" / gid / "d-2" / "deployment-archive" / "appspec.yml").is_file()


def test_a_hook_that_outlives_its_timeout_timed_out(tmp_path: Path) -> None:
    """``timeout`` is 1 s and ``grace`` 30 s: swapped, the script (3 s) would succeed; the
    collect's ``within`` bounds a wait on a hook that never started."""
    root, gid, did = str(tmp_path / "root"), "g-1", "d-1"
    archive = tmp_path / "archive"
    archive.mkdir()
    script = archive / "slow.sh"
    script.write_text("#!/bin/sh\necho started\nsleep 3\necho done\n")
    script.chmod(0o755)
    base = f"{root}/{gid}/{did}/hooks/ValidateService.0"
    start = HookStart(
        base, root, gid, did, "ValidateService", str(script), "slow.sh", 1, None, str(archive), 30
    )
    began = time.monotonic()
    [result] = run_runner(SH, [((start.call(),), b"")])
    hook = parse_hook(result)
    assert hook is not None, result.stderr
    assert (hook.error_code, hook.ok, hook.stdout) == (
        LifecycleErrorCode.SCRIPT_TIMED_OUT,
        False,
        "started\n",
    )
    assert time.monotonic() - began < 3
    # Collected again afterwards, the same result; a hook never started is NotStarted.
    again, never = run_runner(
        SH,
        [
            ((HookCollect(base, 5).call(),), b""),
            ((HookCollect(f"{root}/{gid}/{did}/hooks/Install.0", 0.5).call(),), b""),
        ],
    )
    collected, missing = parse_hook(again), parse_hook(never)
    assert collected is not None and collected.error_code is LifecycleErrorCode.SCRIPT_TIMED_OUT
    assert missing is not None and not missing.started
