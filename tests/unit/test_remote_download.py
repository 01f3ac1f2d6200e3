"""DownloadBundle's checks, run by sh here: the checksum with or without OpenSSL, a failed write.

What travels over SSH is covered by the integration tests; this is the program's own logic.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.hostproto.scripts import program

BUNDLE = os.urandom(300_000)
SHA = hashlib.sha256(BUNDLE).hexdigest()
SH = shutil.which("sh") or "/bin/sh"


def _download(
    root: Path, sha: str, path: str | None = None, bundle: bytes = BUNDLE
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    args = [str(root), "g-1", "d-1", sha, "", "5", ""]
    return subprocess.run(
        [SH, "-c", program("umask") + program("download"), "download", *args],
        input=bundle,
        capture_output=True,
        env=env,
        check=False,
    )


def _without_openssl(tmp_path: Path, stub: str) -> str:
    """A PATH whose `openssl` is ``stub``: a broken or missing OpenSSL."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if stub:
        openssl = bin_dir / "openssl"
        openssl.write_text(f"#!/bin/sh\n{stub}\n")
        openssl.chmod(0o755)
        return f"{bin_dir}:{os.environ['PATH']}"
    # No openssl at all: only the tools the program needs, linked one by one.
    for tool in ("cat", "cp", "ln", "ls", "mkdir", "rm", "sha256sum", "tar"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.fixture
def tar_bundle(tmp_path: Path) -> bytes:
    source = tmp_path / "source"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (source / "data.bin").write_bytes(os.urandom(200_000))
    archive = tmp_path / "bundle.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(source), "."], check=True)
    return archive.read_bytes()


@pytest.mark.parametrize("openssl", ["present", "failing", "printing something else", "missing"])
def test_the_bundle_is_checked_and_unpacked_whichever_tools_the_host_has(
    tmp_path: Path, tar_bundle: bytes, openssl: str
) -> None:
    stub = {
        "present": None,
        "failing": "exit 1",
        "printing something else": "echo 'SHA2-256(stdin)= 0123'",
        "missing": "",
    }[openssl]
    path = None if stub is None else _without_openssl(tmp_path, stub)
    root = tmp_path / "root"
    done = _download(root, hashlib.sha256(tar_bundle).hexdigest(), path, tar_bundle)
    assert done.returncode == 0, done.stderr
    assert b"received the bundle" in done.stdout
    directory = root / "g-1" / "d-1"
    assert (directory / "bundle.sha256").read_text().strip() == hashlib.sha256(
        tar_bundle
    ).hexdigest()
    assert (directory / "deployment-archive" / "appspec.yml").is_file()


@pytest.mark.parametrize("openssl", ["present", "missing"])
def test_a_bundle_with_the_wrong_checksum_is_refused_and_never_counts_as_on_the_host(
    tmp_path: Path, openssl: str
) -> None:
    path = None if openssl == "present" else _without_openssl(tmp_path, "")
    root = tmp_path / "root"
    done = _download(root, "0" * 64, path)
    assert done.returncode == 3
    assert f"bundle checksum mismatch: expected {'0' * 64}, received {SHA}" in done.stderr.decode()
    assert not (root / "g-1" / "d-1" / "bundle.sha256").exists()


def test_a_bundle_that_cannot_be_written_fails_with_the_reason(tmp_path: Path) -> None:
    """Writes past a file size limit fail (EFBIG) as writes to a full disk do (ENOSPC, covered
    against real hosts by the integration tests)."""
    root = tmp_path / "root"
    limited = 'trap "" XFSZ; ulimit -f 64; text=$1; shift; exec "$0" -c "$text" download "$@"'
    args = [str(root), "g-1", "d-1", SHA, "", "5", ""]
    done = subprocess.run(
        [SH, "-c", limited, SH, program("umask") + program("download"), *args],
        input=BUNDLE,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 3
    message = done.stderr.decode()
    assert "File too large" in message  # cat's own words
    assert "the bundle could not be written to" in message
    assert not (root / "g-1" / "d-1" / "bundle.sha256").exists()


def test_a_bundle_left_by_an_earlier_attempt_is_replaced_not_written_through(
    tmp_path: Path, tar_bundle: bytes
) -> None:
    """A resumed DownloadBundle whose bundle.tar is a hard link to another deployment's bundle
    (an earlier attempt reused it) leaves that other bundle as it was."""
    other = tmp_path / "root" / "g-1" / "d-0" / "bundle.tar"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another deployment's bundle")
    directory = tmp_path / "root" / "g-1" / "d-1"
    directory.mkdir()
    os.link(other, directory / "bundle.tar")
    done = _download(tmp_path / "root", hashlib.sha256(tar_bundle).hexdigest(), None, tar_bundle)
    assert done.returncode == 0, done.stderr
    assert other.read_bytes() == b"another deployment's bundle"
    assert (directory / "bundle.tar").read_bytes() == tar_bundle
