"""Install's cost for a tree of many small files in many directories (a node_modules, say).

Two revisions of DIRS directories of FILES files each (400 bytes) are deployed one after the
other to a few lab hosts: the first installs into an empty destination, the second replaces it
(removes every file of the first, copies its own). Prints how long DownloadBundle and Install
took on the first host, from the deployment's record. The lab lives on a journaled ext4 made for
the run, as in bench/rollout.py (on an ext4 without a journal, creating files after deleting many
gets slower run after run).

    python bench/install_tree.py --dirs 2000 --files 10 --hosts 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rollout import lab_filesystem  # noqa: E402

from orchestrator.lab.fleet import Lab  # noqa: E402


def make_tree(directory: Path, tag: str, dirs: int, files: int) -> Path:
    for i in range(dirs):
        sub = directory / "app" / f"d{i // 100:02}" / f"m{i:04}"
        sub.mkdir(parents=True)
        for j in range(files):
            (sub / f"f{j}.js").write_text(f"// {tag} {i} {j}\n" * 20)
    (directory / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/tree\n"
    )
    return directory


def seconds(event: dict[str, str]) -> float:
    return (
        datetime.fromisoformat(event["endTime"]) - datetime.fromisoformat(event["startTime"])
    ).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dirs", type=int, default=2000)
    parser.add_argument("--files", type=int, default=10, help="files per directory")
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestrator-install-tree-") as workdir:
        work = Path(workdir)
        # Sized as for a larger fleet: each host holds the tree up to four times (two archives,
        # two installs), and ext4 gives a 2 GB image 131,072 inodes.
        sized_for = args.hosts * (1 + args.dirs * args.files // 2000)
        with lab_filesystem(work / "lab", sized_for, "journaled"):
            run(work, args.dirs, args.files, args.hosts)


def run(work: Path, dirs: int, files: int, hosts: int) -> None:
    lab = Lab.up(work / "lab" / "fleet", hosts, base_address="127.68.0.0")
    env = {
        **os.environ,
        "ORCHESTRATOR_STATE": str(work / "state"),
        "ORCHESTRATOR_CACHE": str(work / "cache"),
    }
    command = [sys.executable, "-m", "orchestrator", "-i", str(lab.inventory_path), "rollout"]
    command += ["-a", "hello", "-g", "web", "--deployment-config", "CodeDeployDefault.AllAtOnce"]
    try:
        for label in ("into an empty destination", "replacing the previous tree"):
            revision = make_tree(work / label.split()[0], label, dirs, files)
            started = time.monotonic()
            done = subprocess.run(
                [*command, "-r", str(revision), "--output", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.monotonic() - started
            if done.returncode != 0:
                failed = json.loads(done.stdout)["targets"][0]["lifecycleEvents"]
                raise SystemExit(f"rollout exited {done.returncode}: {failed}")
            events = json.loads(done.stdout)["targets"][0]["lifecycleEvents"]
            took = {e["lifecycleEventName"]: seconds(e) for e in events if e.get("endTime")}
            print(
                f"{dirs} x {files} files, {label}: DownloadBundle {took['DownloadBundle']:.2f} s, "
                f"Install {took['Install']:.2f} s, rollout {wall:.2f} s ({hosts} hosts)",
                flush=True,
            )
    finally:
        lab.down()


if __name__ == "__main__":
    main()
