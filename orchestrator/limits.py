"""The controller's own limits: open files, one a host, raised before a deployment starts.

A deployment holds a connection to every selected host at once (DESIGN §1), each a socket, so
the common ``ulimit -n`` of 1024 would fail the hosts past it in the middle of a rollout with
"Too many open files". The soft limit is raised as far as the hard one allows; when even that is
too low, the deployment is refused before any host is contacted, saying how many it needs.
"""

from __future__ import annotations

import resource

from orchestrator.errors import TooManyFiles

# Where the hard limit is "unlimited" (not on Linux, whose hard limit is at most fs.nr_open),
# the soft one is raised this far: enough for any fleet this tool is measured with.
UNLIMITED_TARGET = 1 << 20


def raise_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; (soft, hard) as they are then."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, hard  # a kernel cap below the hard limit: what we have must do
        soft = target
    return soft, hard


def require_open_files(needed: int, hosts: int) -> None:
    """Raise the limit; ``TooManyFiles`` when a deployment to ``hosts`` needing ``needed`` open
    files would still not fit."""
    soft, hard = raise_file_limit()
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    raise TooManyFiles(
        f"a deployment to {hosts} host(s) needs about {needed} open files (one connection a "
        f"host, and the controller's own), but this process may open only {soft} (hard limit "
        f"{shown}). Raise the hard limit to {needed} or more (as root `ulimit -Hn {needed}` in "
        "the shell that starts orchestrator, LimitNOFILE= for a systemd unit, nofile in "
        "/etc/security/limits.conf), or deploy to fewer hosts at a time. No host was contacted."
    )
