"""Handshakes in flight: how `--max-handshakes` changes the time a fleet takes to connect.

Workload: N lab hosts (real sshd on loopback) with bench/rollout.py's revision already deployed;
every timed run is a redeploy of it (AllAtOnce), so what the caps change is how long connecting,
probing and locking every host takes. The caps run in rotating order, ROUNDS times each.
`--delay SECONDS` puts a proxy (bench/uplink_proxy.py) between the controller and every host that
holds each chunk for that long in each direction (the round trip is twice that): a fleet far
away, whose handshakes wait on round trips rather than on CPU. The proxy is a process on the same
cores.

    python bench/handshakes.py --hosts 100 --caps 4,8,16,32,64,128 --rounds 3
    python bench/handshakes.py --hosts 200 --caps 16,32,64,128 --rounds 2 --delay 0.05

Prints per cap the medians of: wall seconds; seconds from the start to the deployment's
createTime (the start-up, then every host connected, probed and locked); controller CPU.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rollout import Bench, lab_filesystem, run_measured  # noqa: E402
from uplink_proxy import ProxyProcess  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402

# The proxy listens on addresses of its own: a port range on one address would meet the
# ephemeral ports of the lab's own connections.
PROXY_BASE_ADDRESS = ipaddress.IPv4Address("127.67.0.1")
PROXY_PORT = 2200


def through_proxy(lab: Lab, workdir: Path) -> tuple[Path, list[list[Any]]]:
    """An inventory that reaches every host through the proxy, and the proxy's routes."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    keys = dict(line.split(" ", 1) for line in lab.known_hosts.read_text().splitlines())
    routes, known = [], []
    for index, (name, host) in enumerate(sorted(inventory["hosts"].items())):
        listen = str(PROXY_BASE_ADDRESS + index)
        spec = lab.host(name)
        routes.append([listen, PROXY_PORT, spec.address, spec.port])
        known.append(f"[{listen}]:{PROXY_PORT} {keys[f'[{spec.address}]:{spec.port}']}")
        host.update(address=listen, port=PROXY_PORT)
    (workdir / "known_hosts").write_text("\n".join(known) + "\n")
    inventory["defaults"]["ssh"]["known_hosts"] = str(workdir / "known_hosts")
    # Behind the delay, with many in flight, a handshake outlasts the lab inventory's 5 s.
    inventory["defaults"]["ssh"]["connect_timeout"] = 30
    (workdir / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    return workdir / "inventory.yaml", routes


def redeploy(bench: Bench, inventory: Path, revision: Path, cap: int) -> tuple[float, float, float]:
    """(wall, seconds from the start to createTime, controller CPU) of one redeploy."""
    args = [
        *(sys.executable, "-m", "orchestrator", "-i", str(inventory), "--max-handshakes", str(cap)),
        *("rollout", "-a", "hello", "-g", "web", "-r", str(revision)),
        *("--deployment-config", "CodeDeployDefault.AllAtOnce", "--output", "json"),
    ]
    measure, done = run_measured(args, bench.env)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.decode()[-2000:]}")
    # run_measured syncs before it starts the clock: the start is its end minus the wall time.
    began = time.time() - measure.wall
    document = json.loads(done.stdout)
    # As in bench/rollout.py: a run that did not deploy correctly is never timed.
    bench.check("/srv/app", "/srv/app-state", revision, str(document["deploymentId"]))
    created = datetime.fromisoformat(document["createTime"]).timestamp()
    return measure.wall, created - began, measure.cpu


def measure(count: int, caps: list[int], rounds: int, delay: float, workdir: Path) -> None:
    lab = Lab.up(workdir / "lab" / "fleet", count, base_address="127.66.0.0")
    proxy = None
    try:
        bench = Bench(lab, workdir / "run")
        revision = bench.new_revision()
        bench.orchestrator(revision, "CodeDeployDefault.AllAtOnce")
        inventory = lab.inventory_path
        if delay:
            inventory, routes = through_proxy(lab, workdir)
            proxy = ProxyProcess(routes, workdir, delay, None)
        results: dict[int, list[tuple[float, float, float]]] = {cap: [] for cap in caps}
        for round_ in range(rounds):
            shift = round_ % len(caps)
            for cap in caps[shift:] + caps[:shift]:
                results[cap].append(redeploy(bench, inventory, revision, cap))
                wall, connected, cpu = results[cap][-1]
                print(
                    f"  round {round_} cap {cap}: wall {wall:.2f} s, created at "
                    f"{connected:.2f} s, cpu {cpu:.2f} s",
                    flush=True,
                )
        for cap in caps:
            walls, created, cpus = zip(*results[cap], strict=True)
            print(
                f"N={count} delay {delay * 1000:.0f} ms cap {cap:4}: wall "
                f"{statistics.median(walls):6.2f} s  created at {statistics.median(created):6.2f}"
                f" s  cpu {statistics.median(cpus):5.2f} s",
                flush=True,
            )
    finally:
        if proxy is not None:
            proxy.stop()
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100, help="fleet size (default 100)")
    parser.add_argument("--caps", default="8,16,32,64,128", help="comma-separated caps")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cap (default 3)")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds each way through a delaying proxy"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-handshakes-"))
    kind = "journaled" if os.geteuid() == 0 else "plain"
    with lab_filesystem(workdir / "lab", args.hosts, kind):
        measure(
            args.hosts, [int(c) for c in args.caps.split(",")], args.rounds, args.delay, workdir
        )


if __name__ == "__main__":
    main()
