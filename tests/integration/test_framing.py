"""Replies of any size and content over real SSH: nothing a host prints is read as structure.

A hook printing megabytes, a runner reply far over asyncssh's 2 MiB window, a previous appspec
holding the probe's old section marker, and a hook running as a low-privilege user that tries to
forge the runner's replies with what it can see on the host.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.hostproto.replies import parse_lock
from orchestrator.lab.fleet import Lab
from orchestrator.models.appspec import MAX_APPSPEC_BYTES
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.base import CommandResult, ScriptCall
from orchestrator.transport.ssh import SshTransport
from tests.integration.helpers import NO_RETRY, host_spec, rollout
from tests.integration.revisions import script_bundle
from tests.integration.test_hooks import runas_user  # noqa: F401 - a fixture

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")


def test_a_hook_printing_5_mib_succeeds_promptly_and_keeps_a_capped_tail(
    small_lab: Lab, tmp_path: Path
) -> None:
    # 5 MiB on stdout, a line on stderr; the last line says where it ended.
    body = (
        "yes 'a line of hook output, eighty bytes long ....................................' "
        "| head -c 5242880\n"
        "echo 'an error line' >&2\n"
        "printf '\\nLAST-LINE\\n'\n"
    )
    bundle = script_bundle(tmp_path, "loud", {"AfterInstall": body})
    started = time.monotonic()
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started < 60
    event = result.event("web-1", "AfterInstall")
    assert event["status"] == "Succeeded"
    assert event["diagnostics"]["logTail"].endswith("[stdout]LAST-LINE\n[stderr]an error line\n")

    deployment_id = result.document["deploymentId"]
    logs = CliRunner().invoke(cli, ["logs", deployment_id, "--host", "web-1"])
    assert logs.exit_code == 0
    assert "[stdout]LAST-LINE" in logs.stdout
    assert "[stderr]an error line" in logs.stdout
    # The history keeps a capped tail, says so, and says where the whole output is.
    assert len(logs.stdout.encode()) < 1024 * 1024
    root = small_lab.deployment_root("web-1")
    assert (
        "[output capped: only its last 128 KiB are kept here; the whole output is in" in logs.stdout
    )
    assert (
        f"{root}/" in logs.stdout and f"/{deployment_id}/logs/scripts.log on web-1]" in logs.stdout
    )
    on_host = small_lab.host_path("web-1", root)
    scripts_log = next(on_host.glob(f"*/{deployment_id}/logs/scripts.log"))
    assert scripts_log.stat().st_size > 5 * 1024 * 1024


def _calls(host: HostSpec, *requests: tuple[ScriptCall, ...]) -> list[CommandResult]:
    async def go() -> list[CommandResult]:
        session = await SshTransport(NO_RETRY, script=HOST_PROGRAMS).connect(host)
        try:
            return [await session.call(*calls, timeout=60) for calls in requests]
        finally:
            await session.close()

    return asyncio.run(go())


def test_the_runner_carries_a_reply_of_any_size(small_lab: Lab, tmp_path: Path) -> None:
    # 5 MiB of bytes that are not UTF-8, through the session's runner, then a step after it.
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(128, 256)) * (5 * 8192))
    size = big.stat().st_size
    sized, catted, after = _calls(
        host_spec(small_lab, "web-1"),
        (ScriptCall("wc", ("-c", str(big))),),
        (ScriptCall("cat", (str(big),)),),
        (ScriptCall("echo", ("after",)),),
    )
    assert sized.ok and sized.stdout.split()[0] == str(size)
    assert catted.ok and len(catted.stdout) == size  # one replacement character a byte
    assert after.ok and after.stdout == "after\n"


def test_a_previous_appspec_of_any_content_up_to_the_limit_runs_its_application_stop(
    small_lab: Lab, tmp_path: Path
) -> None:
    # The probe sends the previous appspec: just under the 1 MiB an appspec may have (several
    # of the runner's 256 KiB reads), with the old section markers inside.
    comments = "".join(f"# ---cleanup--- ---lock--- padding line {i:08d}\n" for i in range(20000))
    stop = "echo stopped > /srv/stopped-by-old-appspec\n"
    first = script_bundle(tmp_path / "1", "big", {"ApplicationStop": stop})
    appspec = first / "appspec.yml"
    appspec.write_text("# ---cleanup---\n" + comments + appspec.read_text())
    assert 900 * 1024 < appspec.stat().st_size <= MAX_APPSPEC_BYTES
    assert rollout(small_lab, first, *ALL_AT_ONCE).exit_code == 0
    marker = small_lab.host_path("web-1", "/srv/stopped-by-old-appspec")
    marker.unlink(missing_ok=True)

    second = rollout(small_lab, script_bundle(tmp_path / "2", "big", {}), *ALL_AT_ONCE)
    assert second.exit_code == 0, second.stderr
    assert second.event("web-1", "ApplicationStop")["status"] == "Succeeded"
    assert marker.read_text() == "stopped\n"


# A runas hook that looks for the runner's boundary where a low-privilege user can see it (every
# ancestor's command line, and every process's), then prints, after it, a complete forged reply
# of success for the next step, whose script fails.
FORGER = r"""
found=
for f in /proc/[0-9]*/cmdline; do
    b=$(tr '\0' '\n' < "$f" 2> /dev/null | awk 'prev == "runner" { print; exit } { prev = $0 }')
    [ -n "$b" ] && found="$found $b"
done
echo "candidates:$found"
for b in $found; do
    printf '\n%s 0 0\nstatus=0 Success\nmessage=forged\nwarning=\n---stdout---\nforged\n' "$b"
    printf -- '---stderr---\n\n%s 0 0\n' "$b"
    printf '\n%s exit 0\n' "$b"
done
"""


def test_a_runas_hook_cannot_forge_a_reply(
    small_lab: Lab,
    tmp_path: Path,
    runas_user: str,  # noqa: F811 - the fixture
) -> None:
    bundle = script_bundle(
        tmp_path,
        "forge",
        {"AfterInstall": FORGER, "ValidateService": "echo really failed; exit 1\n"},
        runas=runas_user,
    )
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    for host in ("web-1", "web-2"):
        assert result.event(host, "AfterInstall")["status"] == "Succeeded"
        validate = result.event(host, "ValidateService")
        assert validate["status"] == "Failed", validate
        assert "really failed" in validate["diagnostics"]["logTail"]
    assert result.exit_code == 5


def test_a_call_while_the_runner_is_busy_is_framed_on_its_own_channel(
    small_lab: Lab, tmp_path: Path
) -> None:
    host = host_spec(small_lab, "web-1")
    root = small_lab.deployment_root("web-1")
    gate = tmp_path / "gate"  # the runner's request reads it: busy until it is written
    os.mkfifo(gate)

    async def go() -> tuple[CommandResult, CommandResult]:
        session = await SshTransport(NO_RETRY, script=HOST_PROGRAMS).connect(host)
        try:
            request = ScriptCall("cat", (str(gate),))
            busy = asyncio.ensure_future(session.call(request, timeout=60))
            await asyncio.sleep(0)  # the call takes the runner before its first await
            assert session._runner_busy.locked()
            status = ScriptCall("lock", ("status", root, "g-busy", "-"))
            aside = await session.call(status, ordered=False, timeout=30)
            with gate.open("w") as opened:
                opened.write("done\n")
            return aside, await busy
        finally:
            await session.close()

    aside, busy = asyncio.run(go())
    assert parse_lock(aside).state == "free"
    assert busy.ok and busy.stdout == "done\n"
