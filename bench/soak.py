"""Soak: many rollouts in a row in one controller process; nothing it holds may grow.

Runs ROLLOUTS deployments one after another to a lab fleet of HOSTS real sshd hosts, in turn:
a success (two good revisions alternate), a failure (ValidateService exits 1 on every host) that
is rolled back automatically, and a stop (`orchestrator stop` as the engine receives it, once the
hosts run AfterInstall: it finishes, nothing after it starts). Each is driven as `rollout` drives it
(revision built and checked, the history store opened and closed, the group's locks, the
release with its automatic rollback), in-process and on one event loop, so that what one
deployment leaves behind adds up in the process measured.

Every EVERY rollouts it prints the controller's open file descriptors, its SSH connections
(established TCP sockets to the lab's sshd ports), the SSH sessions the lab's sshd's still serve
(their per-connection processes), its threads, its asyncio tasks and its RSS (after a
garbage collection). Each deployment's outcome is checked; a wrong one ends the soak.

    python bench/soak.py                        # 200 rollouts to 10 hosts
    python bench/soak.py --rollouts 30 --hosts 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.api.deploying import DeployOptions, load_revision, new_rollout  # noqa: E402
from orchestrator.api.settings import Settings, ssh_transport  # noqa: E402
from orchestrator.engine.release import Release, ReleasePolicy, Releaser  # noqa: E402
from orchestrator.events import Event, LifecycleEventStarted  # noqa: E402
from orchestrator.lab.fleet import Lab  # noqa: E402
from orchestrator.models.inventory import Inventory, load_inventory  # noqa: E402
from orchestrator.state.base import open_store  # noqa: E402

KINDS = ("success", "failure", "stop")
# Long enough for the stop to come while it runs: it finishes, nothing after it starts.
# Not `stop --force`: the engine aborts the hooks that run when the force comes, once, and
# `hook abort` finds nothing to signal on a host still launching its hook, which then runs to its
# end (here 30 s of waiting, a third of the stops in a trial; issue 15's notes).
WAITING = "sleep 1\n"
APPSPEC = """version: 0.0
os: linux
files:
  - source: app
    destination: /srv/soak
hooks:
  ApplicationStop: [{location: scripts/stop.sh, timeout: 60}]
  AfterInstall: [{location: scripts/after_install.sh, timeout: 60}]
  ValidateService: [{location: scripts/validate.sh, timeout: 60}]
"""


def make_revision(directory: Path, version: str, validate: str, after_install: str) -> Path:
    (directory / "app").mkdir(parents=True)
    (directory / "scripts").mkdir()
    (directory / "app" / "version").write_text(version + "\n")
    for name, body in {
        "stop.sh": "echo stopping\n",
        "after_install.sh": after_install,
        "validate.sh": validate,
    }.items():
        script = directory / "scripts" / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    (directory / "appspec.yml").write_text(APPSPEC)
    return directory


@dataclass
class Sample:
    rollouts: int
    fds: int
    ssh_connections: int
    host_sessions: int
    threads: int
    tasks: int
    rss_mb: float


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def ssh_connections(ports: set[int]) -> int:
    """This process's established TCP connections to the lab's sshd ports."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and fields[9] in mine and remote_port in ports:
                count += 1
    return count


def host_sessions(lab: Lab) -> int:
    """Processes the lab's sshd listeners forked for connections (a session each, or a
    pre-auth child): what hosts still serve of the controller's connections."""
    listeners = {host.pid for host in lab.hosts}
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        count += parent in listeners
    return count


def _malloc_trim() -> None:
    """Hand the C allocator's free pages back (glibc), so RSS shows what is in use."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample(done: int, lab: Lab) -> Sample:
    gc.collect()
    _malloc_trim()
    return Sample(
        rollouts=done,
        fds=len(os.listdir("/proc/self/fd")),
        ssh_connections=ssh_connections({host.port for host in lab.hosts}),
        host_sessions=host_sessions(lab),
        threads=threading.active_count(),
        tasks=len(asyncio.all_tasks()),
        rss_mb=rss_mb(),
    )


def print_sample(row: Sample) -> None:
    print(
        f"{row.rollouts:>8} {row.fds:>5} {row.ssh_connections:>8} {row.host_sessions:>13} "
        f"{row.threads:>7} {row.tasks:>5} {row.rss_mb:>8.1f}",
        flush=True,
    )


class Soak:
    def __init__(self, lab: Lab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.inventory: Inventory = load_inventory(lab.inventory_path)
        self.revisions = {
            "success-a": make_revision(workdir / "a", "a", "exit 0\n", "echo a\n"),
            "success-b": make_revision(workdir / "b", "b", "exit 0\n", "echo b\n"),
            "failure": make_revision(workdir / "bad", "bad", "echo failing >&2\nexit 1\n", ""),
            "stop": make_revision(
                workdir / "slow",
                "slow",
                "exit 0\n",
                WAITING,
            ),
        }
        self.state = workdir / "state"
        self.cache = workdir / "cache" / "bundles"
        self.settings = Settings(str(self.state), workdir / "cache")

    async def one(self, index: int) -> str:
        """Rollout ``index``; a description of what went wrong, or "" when it went as meant."""
        kind = KINDS[index % len(KINDS)]
        name = kind if kind != "success" else ("success-a", "success-b")[(index // 3) % 2]
        revision = load_revision(str(self.revisions[name]), self.settings)
        options = DeployOptions(config_name="CodeDeployDefault.AllAtOnce")
        rollout = new_rollout(self.inventory, "hello", "web", revision, options)
        policy = ReleasePolicy(auto_rollback=True, rollback_on_failure=True)
        store = open_store(str(self.state))
        releaser: Releaser | None = None

        def stop_when_hooks_run(event: Event) -> None:
            # Once a host runs the waiting hook: `orchestrator stop`.
            if (
                kind == "stop"
                and isinstance(event, LifecycleEventStarted)
                and event.event.name == "AfterInstall"
                and releaser is not None
            ):
                releaser.request_stop()

        try:
            releaser = Releaser(
                store,
                ssh_transport(None, self.state / "known_hosts"),
                [store, stop_when_hooks_run],
                self.cache,
            )
            release = await releaser.run(rollout, policy)
        finally:
            store.close()
        return _check(kind, release)


def _check(kind: str, release: Release) -> str:
    status = release.deployment.status
    rollback = release.rollback.status if release.rollback else None
    expected = {"success": ("Succeeded", None), "failure": ("Failed", "Succeeded")}.get(
        kind, ("Stopped", None)
    )
    if (status, rollback) != expected:
        return f"{kind}: {status}, rollback {rollback} (expected {expected})"
    return ""


async def soak(
    lab: Lab, workdir: Path, rollouts: int, every: int, trace: bool = False
) -> list[Sample]:
    runner = Soak(lab, workdir)
    # A first success, so that every failure has a revision to roll back to.
    problem = await runner.one(0)
    if problem:
        raise SystemExit(f"the first rollout went wrong: {problem}")
    print(" rollouts   fds  ssh-conn  host-sessions  threads tasks  rss(MB)", flush=True)
    samples = [sample(0, lab)]
    print_sample(samples[-1])
    if trace:
        tracemalloc.start(10)
        baseline = tracemalloc.take_snapshot()
    started = time.monotonic()
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for index in range(1, rollouts + 1):
        begun = time.monotonic()
        problem = await runner.one(index)
        seconds[KINDS[index % len(KINDS)]].append(time.monotonic() - begun)
        if problem:
            raise SystemExit(f"rollout {index} went wrong: {problem}")
        if index % every == 0 or index == rollouts:
            samples.append(sample(index, lab))
            print_sample(samples[-1])
    elapsed = time.monotonic() - started
    each = ", ".join(
        f"{kind} {sum(spent) / len(spent):.1f} s" for kind, spent in seconds.items() if spent
    )
    print(f"{rollouts} rollouts to {len(lab.hosts)} hosts in {elapsed:.0f} s ({each})", flush=True)
    if trace:
        gc.collect()
        grown = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
        print("what grew most (tracemalloc):")
        for stat in grown[:8]:
            print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6} blocks", flush=True)
            for line in stat.traceback.format()[-6:]:
                print(f"      {line}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=200, help="rollouts (default 200)")
    parser.add_argument("--hosts", type=int, default=10, help="lab hosts (default 10)")
    parser.add_argument("--every", type=int, default=20, help="rollouts between samples")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also print where the memory allocated after the first sample grew most (slower)",
    )
    parser.add_argument(
        "--base-address",
        default="127.61.0.0",
        help="the lab's first loopback address (default 127.61.0.0)",
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 16), hard))
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-soak-"))
    lab = Lab.up(workdir / "lab", args.hosts, base_address=args.base_address)
    try:
        asyncio.run(soak(lab, workdir, args.rollouts, args.every, args.tracemalloc))
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
