"""The documented exit codes (DESIGN §3, a contract)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    SUCCEEDED = 0  # succeeded on every host
    INTERNAL_ERROR = 1  # a bug, or a command not built yet
    USAGE = 2  # bad command line (click)
    INVALID_INPUT = 3  # invalid inventory, appspec or revision; no host contacted
    PARTIAL = 4  # succeeded under the minimum-healthy rule, but some hosts failed
    FAILED = 5  # failed (HEALTH_CONSTRAINTS, NO_INSTANCES, unreachable hosts on --check, ...)
    STOPPED = 6  # stopped by the stop command or an alarm
    LOCKED = 7  # not started: another deployment of this group holds the lock
    # the controller's own resources are unusable: not started (a damaged or read-only history
    # store, a database that cannot be reached, a bundle store it cannot use, an open-file limit
    # too low for the hosts; no host contacted), or stopped because the history could no longer
    # be written (a full disk, a database that went away) or the group's lock was lost with its
    # database connection
    LOCAL_FAULT = 8
    INTERRUPTED = 130  # Ctrl-C; the deployment is recorded as Stopped


EXIT_CODE_HELP = """\b
Exit codes:
  0    succeeded on every host
  1    internal error
  2    usage error
  3    invalid inventory, appspec or revision (no host contacted)
  4    succeeded under the minimum-healthy rule, but some hosts failed
  5    failed (HEALTH_CONSTRAINTS, HEALTH_CONSTRAINTS_INVALID, NO_INSTANCES, unreachable)
  6    stopped (stop command or alarm)
  7    not started: another deployment of this group holds the lock
  8    not started: the history store cannot be opened, read or written, the bundle
       store cannot be used, or the open-file limit (ulimit -n) is too low for the
       hosts (no host contacted); or stopped: the history could no longer be
       written, or its database went away (the group lock with it)
  130  interrupted (Ctrl-C)"""
