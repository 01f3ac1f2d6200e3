"""Rollout benchmark: orchestrator against the floor, on a lab fleet of real sshd hosts.

Workload (issue 5): N lab hosts (real OpenSSH sshd on loopback, on this machine's cores); a 5 MB
revision (4 MB of random files, 1 MB of text) whose appspec installs it under /srv/app, with
ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart and ValidateService hooks that each
do a little real work (write a marker, render a config file, check the others' markers); the
previous revision already deployed, so ApplicationStop runs; AllAtOnce and HalfAtATime. After
every run each host is checked: the new revision in place and validated. A run that did not
deploy correctly is reported as failed and never timed.

The lab's hosts live on a journaled ext4 filesystem that the benchmark makes for the run (a
sparse image, loop-mounted; needs root): a server's filesystem. The machines this was written on
have a root filesystem that is ext4 *without* a journal, where ext4 skips, on every inode it
allocates, each inode freed in the last 60 to 360 seconds: creating files after deleting many
gets several times slower and keeps slowing down as a benchmark goes on (measured: 20,000
creates after two rounds of deletes, 1.54 s there against 0.32 s on a journaled ext4). The
floor and orchestrator always share the same filesystem. `--lab-fs plain` keeps the lab where
the temporary directory is.

The floor is bench/floor.py: one connection and one channel per host that receives the bundle
and runs the same hooks, with no bookkeeping. Every timed first deployment ships a revision the
hosts have never seen (its upload is part of it). Also timed: a redeploy of the revision already
on the hosts, and a rollback to the previous one; both are checked to have uploaded nothing
(every host's DownloadBundle reused the bundle it held).

    python bench/rollout.py --hosts 10,100 --runs 3
    python bench/rollout.py --hosts 500 --runs 1 --configs AllAtOnce

`--peers fabric,pyinfra` also runs the workload with Fabric (bench/fabric_deploy.py: one
connection per host, all hosts at once, the bundle `put` over SFTP, then one `run` per step) and
pyinfra (bench/pyinfra_deploy.py: `files.put`, then one `server.shell` per step), installed into a
virtualenv of the benchmark's own (~/.cache/orchestrator-bench/peers), never dependencies of
orchestrator. Like the floor, they deploy every host at once whatever the config.

Prints, per tool, config and N: median wall seconds, controller CPU seconds (user+sys),
controller peak RSS, and orchestrator's ratio to the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.lab.fleet import Lab  # noqa: E402

HOOKS = {
    "stop.sh": 'echo "$DEPLOYMENT_ID" > "${STATE_DIR:-/srv/app-state}/stopped"\n',
    "before_install.sh": 'mkdir -p "${STATE_DIR:-/srv/app-state}"\n'
    'echo "$DEPLOYMENT_ID" > "${STATE_DIR:-/srv/app-state}/before"\n',
    "after_install.sh": "state=${STATE_DIR:-/srv/app-state}\n"
    'printf "version=%s\\ndeployment=%s\\n" "$(cat "${APP_ROOT:-/srv/app}/version")" '
    '"$DEPLOYMENT_ID" > "$state/app.conf"\n',
    "start.sh": 'echo "$DEPLOYMENT_ID" > "${STATE_DIR:-/srv/app-state}/started"\n',
    "validate.sh": "state=${STATE_DIR:-/srv/app-state}\n"
    'for f in before started app.conf; do [ -f "$state/$f" ] || exit 1; done\n'
    'grep -q "deployment=$DEPLOYMENT_ID" "$state/app.conf"\n'
    'cat "$state/app.conf" > "$state/validated"\n',
}
APPSPEC = """version: 0.0
os: linux
files:
  - source: app
    destination: /srv/app
hooks:
  ApplicationStop: [{location: scripts/stop.sh, timeout: 60}]
  BeforeInstall: [{location: scripts/before_install.sh, timeout: 60}]
  AfterInstall: [{location: scripts/after_install.sh, timeout: 60}]
  ApplicationStart: [{location: scripts/start.sh, timeout: 60}]
  ValidateService: [{location: scripts/validate.sh, timeout: 60}]
"""


def make_revision(directory: Path, version: str, seed: int) -> Path:
    """5 MB: 16 random files of 256 KiB and 256 text files of 4 KiB."""
    rng = random.Random(seed)  # noqa: S311 - reproducible filler, not secrets
    (directory / "app" / "data").mkdir(parents=True)
    (directory / "app" / "text").mkdir()
    (directory / "scripts").mkdir()
    for i in range(16):
        (directory / "app" / "data" / f"blob-{i:02}.bin").write_bytes(rng.randbytes(256 * 1024))
    words = ["deploy", "fleet", "host", "revision", "hook", "install", "healthy", "zone"]
    for i in range(256):
        text = " ".join(rng.choice(words) for _ in range(700))[:4096]
        (directory / "app" / "text" / f"page-{i:03}.txt").write_text(text)
    (directory / "app" / "version").write_text(version + "\n")
    for name, body in HOOKS.items():
        script = directory / "scripts" / name
        script.write_text("#!/bin/sh\nset -eu\n" + body)
        script.chmod(0o755)
    (directory / "appspec.yml").write_text(APPSPEC)
    return directory


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mb: float


def run_measured(
    args: list[str], env: dict[str, str]
) -> tuple[Measure, subprocess.CompletedProcess[bytes]]:
    """Run a command; its wall time, and its own CPU and peak RSS from wait4.

    Whatever the previous run left for the kernel to write back is written first: a run is not
    charged for its predecessor's data.
    """
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(args, process.returncode, out.read(), err.read())
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), done


class Bench:
    """One lab fleet; every timed first deployment ships a revision the hosts have never seen."""

    def __init__(self, lab: Lab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "ORCHESTRATOR_STATE": str(workdir / "state"),
            "ORCHESTRATOR_CACHE": str(workdir / "cache"),
        }
        self.hosts_file = workdir / "hosts.json"
        self.hosts_file.write_text(
            json.dumps(
                [
                    {
                        "name": h.name,
                        "address": h.address,
                        "port": h.port,
                        "user": lab.user,
                        "key": str(lab.client_key),
                        "known_hosts": str(lab.known_hosts),
                    }
                    for h in lab.hosts
                ]
            )
        )
        self.versions = 0

    def new_revision(self) -> Path:
        self.versions += 1
        return make_revision(
            self.workdir / f"revision-{self.versions}", f"v{self.versions}", seed=self.versions
        )

    def orchestrator(self, revision: Path, config: str, *command: str) -> tuple[Measure, str]:
        args = [
            sys.executable,
            "-m",
            "orchestrator",
            "-i",
            str(self.lab.inventory_path),
            *(command or ("rollout", "-a", "hello", "-g", "web", "-r", str(revision))),
            "--deployment-config",
            config,
            "--output",
            "json",
        ]
        measure, done = run_measured(args, self.env)
        if done.returncode != 0:
            raise RuntimeError(
                f"orchestrator exited {done.returncode}: {done.stderr.decode()[-2000:]}"
            )
        deployment_id = str(json.loads(done.stdout)["deploymentId"])
        self.check("/srv/app", "/srv/app-state", revision, deployment_id)
        return measure, deployment_id

    def uploaded_nothing(self, deployment_id: str) -> None:
        """Every host took the bundle it already held: a run that uploaded is not a redeploy."""
        command = ["logs", deployment_id, "--event", "DownloadBundle", "--output", "json"]
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *command],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        reused = {
            row["host"]
            for row in json.loads(done.stdout)
            if "reused the bundle already on the host" in row["output"]
        }
        missing = sorted({h.name for h in self.lab.hosts} - reused)
        if missing:
            raise RuntimeError(f"{deployment_id} uploaded the bundle to {', '.join(missing[:5])}")

    def floor(
        self, revision: Path, python: str = sys.executable, script: str = "floor.py"
    ) -> Measure:
        """The floor (or a peer: another interpreter and script with the same arguments)."""
        tar = revision.with_suffix(".tar")
        if not tar.exists():
            subprocess.run(["tar", "-cf", str(tar), "-C", str(revision), "."], check=True)
        deployment_id = f"f-{time.monotonic_ns()}"
        measure, done = run_measured(
            [python, str(REPO / "bench" / script), str(self.hosts_file), str(tar), deployment_id],
            self.env,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{script} exited {done.returncode}: {output}")
        self.check("/srv/floor-app", "/srv/floor-state", revision, deployment_id)
        return measure

    def check(self, app: str, state: str, revision: Path, deployment_id: str) -> None:
        """Every host has the revision in place and validated by this deployment."""
        version = (revision / "app" / "version").read_text()
        for host in self.lab.hosts:
            placed = self.lab.host_path(host.name, f"{app}/version").read_text()
            validated = self.lab.host_path(host.name, f"{state}/validated").read_text()
            if placed != version or f"deployment={deployment_id}" not in validated:
                raise RuntimeError(
                    f"{host.name}: not deployed correctly ({placed.strip()}, {validated!r})"
                )


@contextlib.contextmanager
def lab_filesystem(directory: Path, count: int, kind: str) -> Iterator[None]:
    """``directory`` on a fresh journaled ext4 (``kind`` "journaled"), or as it is ("plain")."""
    directory.mkdir(parents=True)
    if kind == "plain":
        try:
            yield
        finally:
            # A 1000-host fleet holds ~70 GB of revisions: gone before the next size starts.
            shutil.rmtree(directory, ignore_errors=True)
        return
    image = directory.with_suffix(".img")
    # Sparse: only what the hosts write takes disk space. ~60 MB per host for a run's revisions.
    with image.open("wb") as handle:
        handle.truncate((2 + count // 10) * 1024**3)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        # A sparse image reads back zeros: no inode tables to initialise in the background.
        subprocess.run(
            ["mount", "-o", "loop,noinit_itable", str(image), str(directory)], check=True
        )
        try:
            yield
        finally:
            # Lazily if a lab process still holds it: the space is freed when the last one ends.
            subprocess.run(["umount", "-l", str(directory)], check=False)
    finally:
        image.unlink()


def bench_size(
    count: int, runs: int, configs: list[str], workdir: Path, lab_fs: str, peers: dict[str, str]
) -> list[dict[str, object]]:
    with lab_filesystem(workdir / f"lab-{count}", count, lab_fs):
        return measure_size(count, runs, configs, workdir, peers)


def measure_size(
    count: int, runs: int, configs: list[str], workdir: Path, peers: dict[str, str]
) -> list[dict[str, object]]:
    lab = Lab.up(workdir / f"lab-{count}" / "fleet", count, base_address="127.60.0.0")
    rows: list[dict[str, object]] = []
    try:
        bench = Bench(lab, workdir / f"run-{count}")
        # A previous revision is deployed first (not timed), so ApplicationStop runs.
        previous = bench.new_revision()
        _, previous_id = bench.orchestrator(previous, "CodeDeployDefault.AllAtOnce")
        bench.floor(previous)
        for config in configs:
            name = f"CodeDeployDefault.{config}"
            measures: dict[str, list[Measure]] = {
                key: [] for key in ("floor", *peers, "first", "redeploy", "rollback")
            }
            for _ in range(runs):
                revision = bench.new_revision()
                try:
                    measures["floor"].append(bench.floor(revision))
                except RuntimeError as exc:  # the reference failing must not hide the tool's run
                    print(f"floor failed at N={count}, not timed: {exc}", flush=True)
                for peer, python in peers.items():
                    # The peers deploy the same revision where the floor did (a new one each run).
                    try:
                        measures[peer].append(bench.floor(revision, python, f"{peer}_deploy.py"))
                    except RuntimeError as exc:
                        print(f"{peer} failed at N={count}, not timed: {exc}", flush=True)
                first, _ = bench.orchestrator(revision, name)
                measures["first"].append(first)
                redeploy, redeploy_id = bench.orchestrator(revision, name)
                bench.uploaded_nothing(redeploy_id)
                measures["redeploy"].append(redeploy)
                # Back to the previous revision, which the hosts still hold: nothing to upload.
                rollback, rollback_id = bench.orchestrator(
                    previous, name, "rollback", "-a", "hello", "-g", "web", "--to", previous_id
                )
                bench.uploaded_nothing(rollback_id)
                measures["rollback"].append(rollback)
            floor_wall = median([m.wall for m in measures["floor"]] or [math.nan])
            first_wall = median([m.wall for m in measures["first"]])
            for key, label in (
                ("floor", "floor"),
                *((peer, peer) for peer in peers),
                ("first", "orchestrator"),
                ("redeploy", "orchestrator redeploy"),
                ("rollback", "orchestrator rollback"),
            ):
                if not measures[key]:
                    continue
                wall = median([m.wall for m in measures[key]])
                cpu = median([m.cpu for m in measures[key]])
                rows.append(
                    {
                        "tool": label,
                        "config": config,
                        "hosts": count,
                        "wall": wall,
                        "cpu": cpu,
                        "cpu_ms_per_host": 1000 * cpu / count,
                        "rss_mb": max(m.rss_mb for m in measures[key]),
                        "ratio_to_floor": wall / floor_wall,
                        "ratio_to_first": wall / first_wall,
                    }
                )
                print_row(rows[-1])
    finally:
        lab.down()
        shutil.rmtree(workdir / f"run-{count}", ignore_errors=True)
    return rows


PEER_PACKAGES = {"fabric": "fabric>=3.2", "pyinfra": "pyinfra>=3"}


def peer_python(name: str) -> str:
    """The interpreter of the benchmark's own virtualenv, with the peer ``name`` installed."""
    if name not in PEER_PACKAGES:
        raise SystemExit(f"unknown peer {name!r}; known: {', '.join(PEER_PACKAGES)}")
    venv = Path.home() / ".cache" / "orchestrator-bench" / "peers"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", PEER_PACKAGES[name]], check=True
    )
    return str(python)


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_row(row: dict[str, object]) -> None:
    print(
        f"{row['tool']:<24} {row['config']:<12} N={row['hosts']:<5} wall {row['wall']:7.2f}s  "
        f"cpu {row['cpu']:6.2f}s ({row['cpu_ms_per_host']:5.1f} ms/host)  "
        f"rss {row['rss_mb']:6.1f} MB  "
        f"x floor {row['ratio_to_floor']:4.2f}  x first {row['ratio_to_first']:4.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hosts", default="10,100", help="comma-separated fleet sizes (default 10,100)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per measurement; medians are reported"
    )
    parser.add_argument(
        "--configs", default="AllAtOnce,HalfAtATime", help="CodeDeployDefault configs"
    )
    parser.add_argument(
        "--lab-fs",
        choices=("journaled", "plain"),
        default="journaled" if os.geteuid() == 0 else "plain",
        help="the lab hosts' filesystem: a fresh journaled ext4 (default as root) or the "
        "temporary directory's own",
    )
    parser.add_argument(
        "--peers",
        default="",
        help="comma-separated peers to run too: fabric, pyinfra (installed into the "
        "benchmark's own virtualenv)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 16), hard))
    peers = {name: peer_python(name) for name in args.peers.split(",") if name}
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-bench-"))
    print(f"lab filesystem: {args.lab_fs}", flush=True)
    try:
        rows = []
        for count in (int(n) for n in args.hosts.split(",")):
            rows += bench_size(
                count, args.runs, args.configs.split(","), workdir, args.lab_fs, peers
            )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
