"""Which process runs a deployment, told apart from whatever later gets the same pid.

A pid alone names a process only while it lives: after it ends the kernel hands the number to
the next process that asks. So the history records a controller as its pid and its *start*:
the boot it started in (``/proc/sys/kernel/random/boot_id``) and the clock ticks since that boot
when it started (field 22 of ``/proc/<pid>/stat``). A process with that pid and that start is
that controller; any other one is not, whatever its command line says. Signals go through a
pidfd opened before the start is checked, so the process checked is the process signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None


def start_of(pid: int) -> str | None:
    """``BOOT_ID:TICKS``, when process ``pid`` started; None if there is no such process, it has
    ended (a zombie), or there is no /proc to tell."""
    boot = _boot_id()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    fields = stat.rpartition(")")[2].split()
    if boot is None or len(fields) < 20:  # field 22 is the 20th after the name
        return None
    if fields[0] in ("Z", "X"):
        return None  # ended, only not yet reaped by its parent: nothing runs there any more
    return f"{boot}:{fields[19]}"


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start: str | None  # None: recorded by an orchestrator that did not record it

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(os.getpid(), start_of(os.getpid()))

    def alive(self) -> bool:
        """This very process still runs. Records without a start (written before orchestrator
        recorded it) fall back to the command line: alive if it names orchestrator."""
        if self.start is None:
            return _legacy_alive(self.pid)
        return start_of(self.pid) == self.start

    def catches(self, signum: signal.Signals) -> bool:
        """The process with this pid has a handler for ``signum`` (Linux's ``SigCgt``), so
        sending it does not end it. False where there is no /proc to tell: a process that
        does not catch it would die of it (SIGUSR1's default action)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name == "SigCgt":
                try:
                    caught = int(value.strip(), 16)
                except ValueError:
                    return False
                return bool(caught >> (signum - 1) & 1)
        return False

    def send(self, signum: signal.Signals) -> bool:
        """Signal this very process; False (nothing sent) when it is gone or cannot be told
        apart from another one with its pid."""
        if self.start is None:
            return False
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return False
        except OSError:
            # No pidfds (a kernel before 5.3): checked, then signalled by pid, a moment apart.
            if start_of(self.pid) != self.start:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)
                return True
            return False
        try:
            # The pidfd holds the process that had the pid when it was opened; a matching start
            # now proves that is the one recorded (a pid is never handed to an older process).
            if start_of(self.pid) != self.start:
                return False
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signum)
                return True
            return False
        finally:
            os.close(pidfd)


def _legacy_alive(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"orchestrator" in command
