"""Revision sources: a directory, a .tar / .tar.gz or .zip archive (local, or an S3 object:
``integrations/revision_s3.py``), or a git ref, read as entries.

Each reader yields a ``RawEntry`` per entry in the source's own order (or a string saying why an
entry cannot be in a bundle: a hard link, a device), with a way to open a file's contents that
streams them rather than holding them. ``revision.py`` makes the entries into the normalised tar;
a new kind of source (an object store) is one more reader here.
"""

from __future__ import annotations

import datetime
import functools
import os
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from orchestrator.errors import RevisionError

EntryKind = Literal["file", "dir", "symlink"]
SourceKind = Literal["directory", "tar", "tgz", "zip", "git"]
_SPECIAL = "device, fifo or socket: only files, directories and symbolic links are allowed"


@dataclass(slots=True)
class RawEntry:
    name: str
    kind: EntryKind
    mode: int
    size: int
    mtime: float
    target: str | None
    open: Callable[[], IO[bytes]] | None  # None where the source is read in stream order


def _clean_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


# -- readers: each yields RawEntry for one kind of source ---------------------------------------


def _read_directory(root: Path) -> Iterator[RawEntry | str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            info = full.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                yield RawEntry(rel, "symlink", 0o777, 0, info.st_mtime, os.readlink(full), None)
            elif stat.S_ISDIR(info.st_mode):
                yield RawEntry(rel, "dir", mode, 0, info.st_mtime, None, None)
            elif stat.S_ISREG(info.st_mode):
                yield RawEntry(
                    rel,
                    "file",
                    mode,
                    info.st_size,
                    info.st_mtime,
                    None,
                    functools.partial(_open_binary, full),
                )
            else:
                yield f"{rel}: {_SPECIAL}"


def _open_binary(path: Path) -> IO[bytes]:
    return path.open("rb")


def _tar_member(member: tarfile.TarInfo, archive: tarfile.TarFile) -> RawEntry | str:
    name = _clean_name(member.name)
    mode = member.mode & 0o7777
    if member.isdir():
        return RawEntry(name, "dir", mode, 0, member.mtime, None, None)
    if member.issym():
        return RawEntry(name, "symlink", 0o777, 0, member.mtime, member.linkname, None)
    if member.islnk():
        return f"{name}: hard link to '{member.linkname}': hard links are not allowed"
    if member.isreg():
        return RawEntry(
            name, "file", mode, member.size, member.mtime, None, lambda: _extract(archive, member)
        )
    return f"{name}: {_SPECIAL}"


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = archive.extractfile(member)
    if handle is None:  # only for non-regular members, which never get here
        raise RevisionError.single(str(archive.name or "archive"), f"cannot read {member.name}")
    return handle


def _read_tar(path: Path) -> Iterator[RawEntry | str]:
    try:
        with tarfile.open(path, "r:*") as archive:
            while (member := archive.next()) is not None:
                forget_members(archive)
                if _clean_name(member.name) in ("", "."):
                    continue
                yield _tar_member(member, archive)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RevisionError.single(str(path), f"not a readable tar archive: {exc}") from exc


def forget_members(archive: tarfile.TarFile) -> None:
    """TarFile keeps every header it reads or writes (about 500 bytes an entry, 100 MB for a
    revision of 200,000 files) for lookups by name that nothing here makes."""
    archive.members.clear()  # type: ignore[attr-defined]  # typeshed leaves the attribute out


def _read_zip(path: Path) -> Iterator[RawEntry | str]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = _clean_name(info.filename)
                if not name:
                    continue
                unix_mode = info.external_attr >> 16
                mtime = _zip_mtime(info)
                if info.is_dir():
                    yield RawEntry(
                        name, "dir", stat.S_IMODE(unix_mode) or 0o755, 0, mtime, None, None
                    )
                elif stat.S_ISLNK(unix_mode):
                    target = archive.read(info).decode("utf-8", "surrogateescape")
                    yield RawEntry(name, "symlink", 0o777, 0, mtime, target, None)
                elif unix_mode and not stat.S_ISREG(unix_mode):
                    yield f"{name}: {_SPECIAL}"
                else:
                    mode = stat.S_IMODE(unix_mode) or 0o644
                    yield RawEntry(
                        name,
                        "file",
                        mode,
                        info.file_size,
                        mtime,
                        None,
                        functools.partial(archive.open, info),
                    )
    except (zipfile.BadZipFile, OSError) as exc:
        raise RevisionError.single(str(path), f"not a readable zip archive: {exc}") from exc


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    return datetime.datetime(*info.date_time, tzinfo=datetime.UTC).timestamp()


def _git_archive(spec: str, workdir: Path) -> tuple[Path, str]:
    repo, _, ref = spec[len("git:") :].rpartition("@")
    if not repo or not ref:
        raise RevisionError.single(spec, "a git revision is written git:REPO_PATH@REF")
    if not Path(repo).exists():
        raise RevisionError.single(spec, f"git repository '{repo}' not found")

    def git(
        *args: str, stdout: IO[bytes] | int = subprocess.PIPE
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "-C", repo, *args], stdout=stdout, stderr=subprocess.PIPE, check=False
        )

    commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise RevisionError.single(spec, f"'{ref}' is not a commit in {repo}")
    sha = commit.stdout.decode().strip()
    out = workdir / "git-archive.tar"
    with out.open("wb") as handle:
        result = git("archive", "--format=tar", sha, stdout=handle)
    if result.returncode != 0:
        raise RevisionError.single(spec, f"git archive failed: {result.stderr.decode().strip()}")
    return out, sha


def open_source(spec: str, workdir: Path) -> tuple[SourceKind, Path, str | None]:
    if spec.startswith("git:"):
        path, commit = _git_archive(spec, workdir)
        return "git", path, commit
    if spec.startswith("s3://"):
        # boto3 is imported only for an S3 revision.
        from orchestrator.integrations.revision_s3 import download_revision  # noqa: PLC0415

        kind, path = download_revision(spec, workdir)
        return kind, path, None
    path = Path(spec)
    if not path.exists():
        raise RevisionError.single(spec, "revision not found")
    if path.is_dir():
        return "directory", path, None
    lower = path.name.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        return "tgz", path, None
    if lower.endswith(".tar"):
        return "tar", path, None
    if lower.endswith(".zip"):
        return "zip", path, None
    raise RevisionError.single(
        spec,
        "unknown revision type: give a directory, .tar, .tar.gz, .tgz, .zip, git:REPO@REF or "
        "s3://BUCKET/KEY",
    )


def read_entries(kind: SourceKind, path: Path) -> Iterator[RawEntry | str]:
    if kind == "directory":
        return _read_directory(path)
    if kind == "zip":
        return _read_zip(path)
    return _read_tar(path)
