"""The controller's memory for a revision of many entries: a bound per entry (5,000 entries: 742
bytes at the peak; 1825 before).

Before: about 2 KB an entry at the peak (TarFile kept every header it read or wrote, the first
pass kept each entry's opener and with it the archive, entries were dicts, the stream was built
as lines, then a string, then bytes). The bound leaves room for Python versions' differences.
"""

from __future__ import annotations

import io
import tarfile
import tracemalloc
from pathlib import Path

from orchestrator.hostproto import install_stream
from orchestrator.install_plan import build_install_plan
from orchestrator.revision import build_revision

ENTRIES = 5_000
APPSPEC = b"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/tree\n"


def _tree(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("appspec.yml")
        info.size = len(APPSPEC)
        tar.addfile(info, io.BytesIO(APPSPEC))
        for i in range(ENTRIES):
            data = f"{i}\n".encode()
            info = tarfile.TarInfo(f"app/m{i // 1000:02}/p{i // 20:04}/f{i}.js")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_big_revision_and_its_plan_stay_under_a_kilobyte_an_entry(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree.tar")
    tracemalloc.start()
    try:
        revision = build_revision(str(tree), tmp_path / "cache")
        plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
        stream = install_stream.encoded(plan)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.count(b"\nF\t") == ENTRIES
    assert peak / ENTRIES < 1000, f"{peak / ENTRIES:.0f} bytes an entry at the peak"
