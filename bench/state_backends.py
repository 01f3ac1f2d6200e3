"""The history store's cost: the same rollout recorded in SQLite and in PostgreSQL.

A lab fleet of real sshd hosts (bench/rollout.py's workload: a 5 MB revision, five hooks, each
run a revision the hosts never saw) deployed AllAtOnce with ``--state`` a SQLite file, a
PostgreSQL database on loopback (a real server started for the run, tests/integration/postgres.py),
and the same database behind a proxy that delays every packet by ``--delay-ms`` each way (a
database across a slow network). A store that made a round trip per host per event on the event
loop would show there; the writer thread (state/postgres.py) keeps it off.

    python bench/state_backends.py --hosts 20 --runs 3 --delay-ms 20

Prints, per store: median wall seconds of ``orchestrator rollout``, and the controller's CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rollout import Bench  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402
from tests.integration.postgres import postgres_server  # noqa: E402


def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
    """Forward ``source`` to ``sink``, each chunk ``delay`` seconds late."""
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            time.sleep(delay)  # the simulated one-way latency of this chunk
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def delaying_proxy(port: int, delay: float) -> Iterator[int]:
    """A TCP proxy on loopback to ``port``: its own port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def serve() -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", port))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b, delay), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopped.set()
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs per store; medians reported")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="proxy delay, each way")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-bench-state-"))
    lab = Lab.up(workdir / "lab", args.hosts, base_address="127.51.200.0")
    try:
        with postgres_server() as server:
            bench = Bench(lab, workdir / "bench")
            direct = server.new_database()
            with delaying_proxy(server.port, args.delay_ms / 1000) as port:
                slow = server.new_database().replace(f":{server.port}/", f":{port}/")
                stores = {
                    "sqlite": str(workdir / "state"),
                    "postgresql": direct,
                    f"postgresql+{args.delay_ms:g}ms": slow,
                }
                bench.orchestrator(bench.new_revision(), "CodeDeployDefault.AllAtOnce")  # warm
                print(f"{args.hosts} hosts, AllAtOnce, median of {args.runs}:", flush=True)
                for name, url in stores.items():
                    bench.env["ORCHESTRATOR_STATE"] = url
                    walls, cpus = [], []
                    for _ in range(args.runs):
                        measure, _ = bench.orchestrator(
                            bench.new_revision(), "CodeDeployDefault.AllAtOnce"
                        )
                        walls.append(measure.wall)
                        cpus.append(measure.cpu)
                    print(
                        f"  {name:<24} wall {statistics.median(walls):6.2f} s   "
                        f"cpu {statistics.median(cpus):5.2f} s",
                        flush=True,
                    )
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
