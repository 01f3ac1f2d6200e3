"""ProcessIdentity.catches: only a process with a SIGUSR1 handler is sent one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from orchestrator.state.process import ProcessIdentity


def test_catches_reads_the_process_handlers() -> None:
    here = ProcessIdentity.current()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    try:
        assert here.catches(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not here.catches(signal.SIGUSR1) or previous not in (signal.SIG_DFL, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not ProcessIdentity(child.pid, None).catches(signal.SIGUSR1)
    finally:
        child.kill()
        child.wait()
    assert not ProcessIdentity(2**22 + os.getpid(), None).catches(signal.SIGUSR1)  # no such pid
