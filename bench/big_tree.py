"""A revision of many tiny files (a node_modules, and more) through a whole cycle, at several sizes.

For each size N (files), on a lab of one host (``--hosts``) living on a journaled ext4 made for
the run (as in bench/rollout.py): a first deployment of revision A (N files of one line, DIR
files a directory) into an empty destination, a redeploy of A (the same bundle: unchanged files
kept), a deployment of B (the same names, other contents: every file of A removed and B's
copied), a rollback to A (from the bundle still on the host: nothing uploaded), and a cleanup (a
revision of one file into the same destination: all N files of A removed). After each step the
host's destination is checked (its file count and some files' contents); a step that did not
deploy correctly stops the benchmark.

Prints, per step: the wall time of ``orchestrator rollout`` (or ``rollback``), the controller's
CPU and peak RSS (from wait4), and the Install event's time on the host (from the record).

    python bench/big_tree.py --files 10000,50000,200000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rollout import lab_filesystem, run_measured  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402

DESTINATION = "/srv/tree"
APPSPEC = f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {DESTINATION}\n"
STEPS = ("first", "redeploy", "replace", "rollback", "cleanup")


def tree_name(index: int, per_dir: int) -> str:
    directory = index // per_dir
    return f"m{directory // 100:03}/p{directory:05}/f{index % per_dir}.js"


def make_tree(path: Path, tag: str, files: int, per_dir: int) -> Path:
    """A tar of FILES one-line files (TAG and the file's number), DIR to a directory."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))

        add("appspec.yml", APPSPEC.encode())
        add("app")
        made: set[str] = set()
        for i in range(files):
            name = tree_name(i, per_dir)
            parts = name.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    add(f"app/{directory}")
            add(f"app/{name}", f"// {tag} {i}\n".encode())
    return path


def check(lab: Lab, tag: str | None, files: int, per_dir: int) -> None:
    """Every host's destination holds exactly the tree tagged TAG (None: the cleanup's one file)."""
    for host in lab.hosts:
        root = lab.host_path(host.name, DESTINATION)
        count = sum(len(names) for _, _, names in os.walk(root))
        expected = 1 if tag is None else files
        if count != expected:
            raise SystemExit(f"{host.name}: {count} files in {DESTINATION}, expected {expected}")
        if tag is None:
            if sorted(os.listdir(root)) != ["only.txt"]:
                raise SystemExit(f"{host.name}: {DESTINATION} holds {os.listdir(root)[:5]}")
            continue
        for i in {0, files // 2, files - 1}:
            text = (root / tree_name(i, per_dir)).read_text()
            if text != f"// {tag} {i}\n":
                raise SystemExit(f"{host.name}: {tree_name(i, per_dir)} holds {text!r}")


def seconds(event: dict[str, str]) -> float:
    return (
        datetime.fromisoformat(event["endTime"]) - datetime.fromisoformat(event["startTime"])
    ).total_seconds()


def measure(files: int, per_dir: int, hosts: int, work: Path) -> dict[str, Any]:
    lab = Lab.up(work / "lab" / "fleet", hosts, base_address="127.69.0.0")
    env = {
        **os.environ,
        "ORCHESTRATOR_STATE": str(work / "state"),
        "ORCHESTRATOR_CACHE": str(work / "cache"),
    }
    base = [sys.executable, "-m", "orchestrator", "-i", str(lab.inventory_path)]
    group = ["-a", "hello", "-g", "web", "--deployment-config", "CodeDeployDefault.AllAtOnce"]
    row: dict[str, Any] = {"files": files, "per_dir": per_dir, "hosts": hosts}
    try:
        tree_a = make_tree(work / "a.tar", "a", files, per_dir)
        tree_b = make_tree(work / "b.tar", "b", files, per_dir)
        row["bundle_mb"] = round(tree_a.stat().st_size / 1e6, 1)
        small = work / "small"
        (small / "app").mkdir(parents=True)
        (small / "appspec.yml").write_text(APPSPEC)
        (small / "app" / "only.txt").write_text("only\n")
        ids: dict[str, str] = {}
        plan: list[tuple[str, list[str], str | None]] = [
            ("first", ["rollout", "-r", str(tree_a)], "a"),
            ("redeploy", ["rollout", "-r", str(tree_a)], "a"),
            ("replace", ["rollout", "-r", str(tree_b)], "b"),
            ("rollback", ["rollback", "--to", "first"], "a"),
            ("cleanup", ["rollout", "-r", str(small)], None),
        ]
        for step, command, tag in plan:
            command = [ids.get(word, word) for word in command]
            taken, done = run_measured([*base, *command, *group, "--output", "json"], env)
            if done.returncode != 0:
                tail = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
                raise SystemExit(f"{files} files, {step}: exit {done.returncode}\n{tail}")
            document = json.loads(done.stdout)
            ids[step] = document["deploymentId"]
            check(lab, tag, files, per_dir)
            installs = [
                seconds(e)
                for target in document["targets"]
                for e in target["lifecycleEvents"]
                if e["lifecycleEventName"] == "Install" and e.get("endTime")
            ]
            row[step] = {
                "wall": round(taken.wall, 2),
                "cpu": round(taken.cpu, 2),
                "rss_mb": round(taken.rss_mb),
                "install": round(max(installs), 2),
            }
            print(f"{files} files, {step}: {row[step]}", file=sys.stderr, flush=True)
    finally:
        lab.down()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", default="10000,50000,200000", help="sizes, comma-separated")
    parser.add_argument("--per-dir", type=int, default=20, help="files a directory")
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--lab-fs", choices=("journaled", "plain"), default="journaled")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    for files in (int(n) for n in args.files.split(",")):
        with tempfile.TemporaryDirectory(prefix="orchestrator-big-tree-") as workdir:
            work = Path(workdir)
            # Each host holds up to three trees' inodes (two archives and the install) and the
            # bundles: one GB of image (65,536 inodes) for every 1,500 files.
            with lab_filesystem(work / "lab", args.hosts * (1 + files // 1500), args.lab_fs):
                rows.append(measure(files, args.per_dir, args.hosts, work))
    print("| files | step | wall | controller CPU | controller peak RSS | Install on the host |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        for step in STEPS:
            m = row[step]
            print(
                f"| {row['files']:,} | {step} | {m['wall']:.1f} s | {m['cpu']:.1f} s "
                f"| {m['rss_mb']} MB | {m['install']:.2f} s |"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
