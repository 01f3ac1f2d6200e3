"""Bundles pushed over SSH against bundles through an S3-compatible store, at scale (issue 18).

Workload: N lab hosts (real sshd on loopback) and bench/rollout.py's revision grown to
`--bundle-mb` MB with random (incompressible) data; the previous revision deployed first, so
ApplicationStop runs; AllAtOnce; every timed run ships a revision the hosts have never seen, and
every host is checked afterwards (the new revision in place and validated). The store is moto's
server mode on loopback (the test suite's, tests/integration/s3_server.py).

Capped: the controller's uplink is bench/uplink_proxy.py with `--rate-mbit` shared by every
connection: the SSH connections go through it, and so does the controller's upload to the store
(boto3 reaches the store through it as an HTTP proxy, HTTP_PROXY); the hosts fetch from the
store directly, as hosts in a data centre do. Its byte counts are the controller's bytes sent
(client to upstream: SSH and the upload, with the handful of bytes the hosts' GETs do not add,
since they do not go through it). Uncapped: the same two runs with no proxy at all.

    python bench/bundle_store.py --hosts 100 --bundle-mb 20 --rate-mbit 100

Prints per mode (push, store) and uplink: wall seconds, controller CPU, controller bytes sent
(capped runs) against the targets (store: <= 1.1 x bundle + 64 KB per host; capped: store at
least 10x shorter; uncapped: store no slower), and the machine's load while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from handshakes import through_proxy  # noqa: E402
from rollout import Bench, lab_filesystem, make_revision, run_measured  # noqa: E402
from uplink_proxy import ProxyProcess  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402
from tests.integration.s3_server import (  # noqa: E402
    S3Server,
    aws_environment,
    start_s3_server,
    stop_s3_server,
)

BUCKET = "bench-bundles"
S3_PROXY = ("127.68.0.1", 2300)  # the controller's way to the store, through the uplink


@dataclass
class Run:
    mode: str  # push | store
    capped: bool
    wall: float
    cpu: float
    sent: int | None  # bytes the controller sent (capped runs: counted at the proxy)
    bundle: int  # the bundle's size


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class StoreBench:
    def __init__(self, lab: Lab, workdir: Path, s3: S3Server, mb: int) -> None:
        self.bench = Bench(lab, workdir / "run")
        self.lab, self.workdir, self.s3, self.mb = lab, workdir, s3, mb
        self.env = {**self.bench.env, **aws_environment(workdir)}
        self.env.pop("HTTP_PROXY", None)
        self.env.pop("NO_PROXY", None)

    def revision(self) -> Path:
        bench = self.bench
        bench.versions += 1
        directory = make_revision(
            self.workdir / f"revision-{bench.versions}", f"v{bench.versions}", bench.versions
        )
        extra = max(0, self.mb * 1024 * 1024 - 5 * 1024 * 1024)
        rng = random.Random(bench.versions)  # noqa: S311 - reproducible filler, not secrets
        (directory / "app" / "data" / "filler.bin").write_bytes(rng.randbytes(extra))
        return directory

    def deploy(self, inventory: Path, revision: Path, store: bool, proxy: bool) -> Run:
        args = [
            *(sys.executable, "-m", "orchestrator", "-i", str(inventory)),
            *("rollout", "-a", "hello", "-g", "web", "-r", str(revision)),
            *("--deployment-config", "CodeDeployDefault.AllAtOnce", "--output", "json"),
        ]
        env = dict(self.env)
        if store:
            args += ["--bundle-store", f"s3://{BUCKET}/b", "--bundle-store-endpoint"]
            args.append(self.s3.endpoint)
            if proxy:
                env["HTTP_PROXY"] = f"http://{S3_PROXY[0]}:{S3_PROXY[1]}"
        measure, done = run_measured(args, env)
        if done.returncode != 0:
            raise RuntimeError(f"exit {done.returncode}: {done.stderr.decode()[-2000:]}")
        document = json.loads(done.stdout)
        self.bench.check("/srv/app", "/srv/app-state", revision, str(document["deploymentId"]))
        size = int(document["revision"]["size"])
        if store:
            key = f"b/{document['revision']['sha256']}.tar"
            if key not in self.s3.keys(BUCKET):
                raise RuntimeError(f"{key} is not in the store")
        return Run("store" if store else "push", proxy, measure.wall, measure.cpu, None, size)


def limited_inventory(lab: Lab) -> None:
    """Two revisions kept per host: 100 hosts x 20 MB revisions fill a disk otherwise."""
    document = yaml.safe_load(lab.inventory_path.read_text())
    document["defaults"]["max_revisions"] = 2
    lab.inventory_path.write_text(yaml.safe_dump(document))


def measure(count: int, mb: int, rate_mbit: float, workdir: Path) -> list[Run]:
    s3 = start_s3_server(workdir / "s3")
    lab = Lab.up(workdir / "lab" / "fleet", count, base_address="127.62.0.0")
    proxy = None
    runs: list[Run] = []
    try:
        s3.new_bucket(BUCKET)
        limited_inventory(lab)
        bench = StoreBench(lab, workdir, s3, mb)
        bench.deploy(lab.inventory_path, bench.revision(), store=False, proxy=False)
        proxied, routes = through_proxy(lab, workdir)
        store_port = int(s3.endpoint.rsplit(":", 1)[1])
        routes.append([S3_PROXY[0], S3_PROXY[1], "127.0.0.1", store_port])
        proxy = ProxyProcess(routes, workdir, 0.0, rate_mbit * 1e6)
        for store in (False, True):
            proxy.counts(reset=True)
            run = bench.deploy(proxied, bench.revision(), store, proxy=True)
            run.sent = proxy.counts()["up"]
            runs.append(run)
            show(run, count)
        proxy.stop()
        proxy = None
        for store in (True, False):
            runs.append(bench.deploy(lab.inventory_path, bench.revision(), store, proxy=False))
            show(runs[-1], count)
    finally:
        if proxy is not None:
            proxy.stop()
        lab.down()
        stop_s3_server(s3)
    return runs


def show(run: Run, count: int) -> None:
    uplink = "capped" if run.capped else "uncapped"
    sent = ""
    if run.sent is not None:
        per_bundle = run.sent / run.bundle
        target = 1.1 * run.bundle + 64 * 1024 * count
        sent = f"  sent {run.sent / 1e6:8.1f} MB ({per_bundle:5.2f} x bundle"
        shipped = run.bundle if run.mode == "store" else run.bundle * count
        sent += f", {(run.sent - shipped) / count / 1024:.0f} KB/host beyond the bundles"
        sent += f", target {target / 1e6:.1f} MB)" if run.mode == "store" else ")"
    print(
        f"{run.mode:<5} {uplink:<8} N={count:<4} bundle {run.bundle / 1e6:5.1f} MB  "
        f"wall {run.wall:7.2f} s  cpu {run.cpu:6.2f} s{sent}",
        flush=True,
    )


def verdict(runs: list[Run], count: int) -> None:
    by = {(run.mode, run.capped): run for run in runs}
    capped_store, capped_push = by[("store", True)], by[("push", True)]
    assert capped_store.sent is not None
    target = 1.1 * capped_store.bundle + 64 * 1024 * count
    print(
        f"store bytes sent {capped_store.sent / 1e6:.1f} MB <= {target / 1e6:.1f} MB: "
        f"{capped_store.sent <= target}",
        flush=True,
    )
    ratio = capped_push.wall / capped_store.wall
    print(f"capped: push / store wall = {ratio:.1f}x (target >= 10x): {ratio >= 10}", flush=True)
    free_store, free_push = by[("store", False)], by[("push", False)]
    print(
        f"uncapped: store {free_store.wall:.2f} s against push {free_push.wall:.2f} s "
        f"(target: no slower): {free_store.wall <= free_push.wall}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100, help="fleet size (default 100)")
    parser.add_argument("--bundle-mb", type=int, default=20, help="bundle size (default 20)")
    parser.add_argument("--rate-mbit", type=float, default=100, help="uplink cap (default 100)")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 16), hard))
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-bundle-store-"))
    kind = "journaled" if os.geteuid() == 0 else "plain"
    busy0, total0 = machine_busy()
    load0, started = os.getloadavg(), time.monotonic()
    try:
        with lab_filesystem(workdir / "lab", args.hosts, kind):
            runs = measure(args.hosts, args.bundle_mb, args.rate_mbit, workdir)
        verdict(runs, args.hosts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    busy1, total1 = machine_busy()
    print(
        f"machine: {os.cpu_count()} cores, {100 * (busy1 - busy0) / (total1 - total0):.0f}% "
        f"busy over the {time.monotonic() - started:.0f} s of the benchmark (everything on it); "
        f"load average {load0[0]:.1f} before, {os.getloadavg()[0]:.1f} after",
        flush=True,
    )


if __name__ == "__main__":
    main()
