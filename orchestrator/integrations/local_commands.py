"""Commands the integrations run on the controller (alarm checks, load balancer commands), each
in a session of its own, so that a timeout or a cancelled deployment ends all of it: the shell
and whatever it started (``sleep 30 | cat`` included), not the shell alone while its children
hold the output pipe open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

KILLED_WAIT = 5.0  # seconds to reap a killed command; what escaped its session is let go


async def run_local(argv: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit status or None on timeout, stdout and stderr together). ``OSError`` when it
    cannot start."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    except TimeoutError:
        await _kill(process)
        return None, ""
    except BaseException:  # cancelled with its deployment: nothing of it outlives that
        await asyncio.shield(_kill(process))
        raise
    return process.returncode, output.decode(errors="replace")


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILLED_WAIT):
            await process.wait()
