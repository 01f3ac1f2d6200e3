"""The host programs with unusual names, run by sh here: retention, the checksum, Install.

Roots, group ids and paths with spaces, quotes, `$(...)`, backticks, backslashes and globs are
taken literally: never split into words, never read as escapes. The same over SSH is
tests/integration/test_names.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.hostproto import install_stream
from orchestrator.hostproto.scripts import program
from orchestrator.install_plan import build_install_plan
from orchestrator.lab import toolbox
from orchestrator.models.appspec import parse_appspec
from orchestrator.revision import ManifestEntry

SH = shutil.which("sh") or "/bin/sh"
SPACED = 'it\'s "q" $(id) `id` ü [x]* ~'
WEIRD = f"{SPACED} \\b \\n"


def _run(
    name: str, args: list[str], stdin: bytes = b"", path: str | None = None, sh: str = SH
) -> str:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    done = subprocess.run(
        [sh, "-c", program("umask") + program(name), name, *args],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.fixture
def tar_bundle(tmp_path: Path) -> bytes:
    source = tmp_path / "source"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    archive = tmp_path / "bundle.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(source), "."], check=True)
    return archive.read_bytes()


def test_retention_under_a_root_with_spaces_removes_the_oldest_and_nothing_else(
    tmp_path: Path, tar_bundle: bytes
) -> None:
    # What a word-split "<tmp>/my root/..." would name first: "<tmp>/my".
    canary = tmp_path / "my"
    canary.mkdir()
    root = tmp_path / "my root" / SPACED
    group = root / f"g {SPACED}"
    # Oldest first by modification time, not by name: d-3, d-0, d-2, d-1.
    for seconds, name in enumerate(("d-3", "d-0", "d-2", "d-1")):
        (group / name).mkdir(parents=True)
        os.utime(group / name, (1_700_000_000 + seconds * 10,) * 2)
    sha = hashlib.sha256(tar_bundle).hexdigest()
    last = str(group / "d-3")  # the oldest, but the last successful: kept
    out = _run("download", [str(root), group.name, "d-9", sha, "", "3", last], tar_bundle)
    assert sorted(p.name for p in group.iterdir()) == ["d-1", "d-3", "d-9"]
    assert out.count("removed old revision directory") == 2
    assert f"removed old revision directory {group}/d-0\n" in out
    assert canary.is_dir()
    assert (group / "d-9" / "deployment-archive" / "appspec.yml").is_file()


def test_the_checksum_without_openssl_under_a_root_with_a_backslash(
    tmp_path: Path, tar_bundle: bytes
) -> None:
    """sha256sum escapes a file name holding a backslash (a leading backslash on its line)."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "openssl").write_text("#!/bin/sh\nexit 1\n")
    (stubs / "openssl").chmod(0o755)
    root = tmp_path / WEIRD
    sha = hashlib.sha256(tar_bundle).hexdigest()
    out = _run(
        "download",
        [str(root), "g", "d-1", sha, "", "5", ""],
        tar_bundle,
        path=f"{stubs}:{os.environ['PATH']}",
    )
    assert "received the bundle" in out


def _tools(kind: str, tmp_path: Path) -> tuple[str | None, str]:
    """(PATH, sh) of a GNU host (this machine's) or of a busybox-only host."""
    if kind == "gnu":
        return None, SH
    applets = toolbox.busybox(tmp_path / "busybox")
    return str(applets), str(applets / "sh")


@pytest.mark.parametrize("kind", ["gnu", "busybox"])
def test_install_takes_roots_group_ids_and_paths_literally(tmp_path: Path, kind: str) -> None:
    path, sh = _tools(kind, tmp_path)
    root = tmp_path / f"root {WEIRD}"
    gid = f"g {WEIRD}"
    archive = root / gid / "d-1" / "deployment-archive"
    (archive / "app" / WEIRD).mkdir(parents=True)
    (archive / "app" / WEIRD / f"f {WEIRD}.txt").write_text("new\n")
    (archive / "app" / "kept.txt").write_text("new\n")
    destination = tmp_path / f"dest {WEIRD}"
    destination.mkdir()
    (destination / "kept.txt").write_text("old\n")
    appspec = parse_appspec(
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: app\n    destination: '{str(destination).replace(chr(39), chr(39) * 2)}'\n"
    )
    entries = (
        ManifestEntry("app", "dir", 0o755),
        ManifestEntry(f"app/{WEIRD}", "dir", 0o755),
        ManifestEntry(f"app/{WEIRD}/f {WEIRD}.txt", "file", 0o644, 4),
        ManifestEntry("app/kept.txt", "file", 0o644, 4),
    )
    plan = build_install_plan(appspec, entries, "RETAIN")
    out = _run(
        "install", [str(root), gid, "d-1"], install_stream.rendered(plan).encode(), path=path, sh=sh
    )
    installed = destination / WEIRD / f"f {WEIRD}.txt"
    assert installed.read_text() == "new\n"
    assert (destination / "kept.txt").read_text() == "old\n"
    assert f"(file_exists_behavior RETAIN): {destination}/kept.txt\n" in out
    cleanup = root / "deployment-instructions" / f"{gid}-cleanup"
    assert str(installed) in cleanup.read_text().split("\n")
    assert (root / "deployment-instructions" / f"{gid}-install.json").is_file()


@pytest.mark.parametrize("kind", ["gnu", "busybox"])
def test_a_file_replaces_a_directory_of_the_previous_install(tmp_path: Path, kind: str) -> None:
    """The directory is the previous install's: removed with its files, then the file copied
    (busybox's cp, which is not GNU's, has what is in its way removed first: files only)."""
    path, sh = _tools(kind, tmp_path)
    root, gid, destination = tmp_path / "root", "g", tmp_path / "dest"
    destination.mkdir()
    app = ManifestEntry("app", "dir", 0o755)
    layouts = {
        "d-1": (app, ManifestEntry("app/x", "dir", 0o755), ManifestEntry("app/x/f", "file", 0o644)),
        "d-2": (app, ManifestEntry("app/x", "file", 0o644)),
    }
    appspec = parse_appspec(
        f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {destination}\n"
    )
    for deployment, entries in layouts.items():
        archive = root / gid / deployment / "deployment-archive"
        for entry in entries:
            if entry.kind == "dir":
                (archive / entry.path).mkdir(parents=True, exist_ok=True)
            else:
                (archive / entry.path).write_text(f"{deployment}\n")
        plan = build_install_plan(appspec, entries, "DISALLOW")
        _run(
            "install",
            [str(root), gid, deployment],
            install_stream.rendered(plan).encode(),
            path=path,
            sh=sh,
        )
    assert (destination / "x").read_text() == "d-2\n"
