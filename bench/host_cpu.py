"""Where a deployment's CPU goes on the hosts: processes and CPU per command, per host.

The rollout benchmark's workload (bench/rollout.py) on N lab hosts: a first deployment, a
redeploy and a rollback, each under BSD process accounting (every process that exits is
recorded with its command and CPU time) and with the machine's CPU read from /proc/stat around
it. Needs root and the `acct` package (accton, dump-acct). Accounting rounds each process's CPU
down to 10 ms ticks, so its per-command CPU undercounts short processes; the process counts and
the machine's total are exact. `--perf` also samples the whole machine with `perf record -a`
(kernel time and kernel threads included) and prints each command's share of the CPU.

    python bench/host_cpu.py --hosts 100 --perf
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rollout import Bench, Measure, lab_filesystem  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402

CONFIG = "CodeDeployDefault.AllAtOnce"
TICK = 0.01  # seconds per accounting tick


def machine_cpu() -> list[int]:
    with open("/proc/stat") as stat:
        return [int(field) for field in stat.readline().split()[1:]]


def per_command(accounting: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Processes and CPU seconds per command name."""
    dump = subprocess.run(
        ["dump-acct", str(accounting)], check=True, capture_output=True, text=True
    )
    processes: collections.Counter[str] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    for line in dump.stdout.splitlines():
        fields = [field.strip() for field in line.split("|")]
        processes[fields[0]] += 1
        seconds[fields[0]] += (float(fields[2]) + float(fields[3])) * TICK
    return processes, seconds


def perf_shares(samples: Path) -> list[str]:
    """`perf report` by command: the top lines, "share command"."""
    done = subprocess.run(
        ["perf", "report", "-i", str(samples), "--sort", "comm", "--stdio"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    return [f"{share:>7} {command}" for share, command, *_ in rows[:12]]


def report(
    label: str, hosts: int, measure: Measure, before: list[int], after: list[int], accounting: Path
) -> None:
    delta = [b - a for a, b in zip(before, after, strict=True)]
    busy = (sum(delta) - delta[3] - delta[4]) * TICK  # all but idle and iowait
    processes, seconds = per_command(accounting)
    # The controller and the tools this script runs are not the hosts'.
    for ours in ("python", "python3", "accton", "dump-acct"):
        processes.pop(ours, None)
        seconds.pop(ours, None)
    print(
        f"{label}: wall {measure.wall:.2f} s; machine CPU {1000 * busy / hosts:.0f} ms/host "
        f"(controller {1000 * measure.cpu / hosts:.1f}); host processes "
        f"{sum(processes.values()) / hosts:.1f}/host"
    )
    for command, count in processes.most_common(15):
        print(
            f"    {command:<16} {count / hosts:5.1f}/host  "
            f"{1000 * seconds[command] / hosts:6.1f} ms/host (at least)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--lab-fs", choices=("journaled", "plain"), default="journaled")
    parser.add_argument("--perf", action="store_true", help="also sample with perf record -a")
    args = parser.parse_args()
    if not (shutil.which("accton") and shutil.which("dump-acct")):
        raise SystemExit("needs the acct package (accton, dump-acct): apt-get install acct")
    with tempfile.TemporaryDirectory(prefix="orchestrator-host-cpu-") as workdir:
        work = Path(workdir)
        with lab_filesystem(work / "lab", args.hosts, args.lab_fs):
            lab = Lab.up(work / "lab" / "fleet", args.hosts, base_address="127.66.0.0")
            try:
                bench = Bench(lab, work / "run")
                previous = bench.new_revision()
                _, previous_id = bench.orchestrator(previous, CONFIG)
                revision = bench.new_revision()
                rollback = ("rollback", "-a", "hello", "-g", "web", "--to", previous_id)
                runs = [
                    ("first", revision, ()),
                    ("redeploy", revision, ()),
                    ("rollback", previous, rollback),
                ]
                for label, deployed, command in runs:
                    accounting = work / f"{label}.acct"
                    accounting.touch()
                    subprocess.run(["accton", str(accounting)], check=True, capture_output=True)
                    samples = work / f"{label}.perf"
                    sampler = None
                    if args.perf:
                        record = ["perf", "record", "-a", "-F", "499", "-o", str(samples)]
                        sampler = subprocess.Popen(record, stderr=subprocess.DEVNULL)
                    try:
                        before = machine_cpu()
                        measure, _ = bench.orchestrator(deployed, CONFIG, *command)
                        after = machine_cpu()
                    finally:
                        subprocess.run(["accton", "off"], check=True, capture_output=True)
                        if sampler is not None:
                            sampler.send_signal(signal.SIGINT)
                            sampler.wait(timeout=60)
                    report(label, args.hosts, measure, before, after, accounting)
                    if sampler is not None:
                        print("    perf, share of the machine's CPU by command:")
                        for line in perf_shares(samples):
                            print(f"    {line}")
            finally:
                lab.down()


if __name__ == "__main__":
    main()
