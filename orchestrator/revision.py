"""Revisions: a bundle from a directory, .tar, .tar.gz, .zip or a git ref, made into one tar.

``build_revision`` reads the source twice without holding file contents in memory: first the entry
list (to check every entry and decide whether a single top-level directory is stripped, as the
CodeDeploy agent does), then the contents, streamed into a normalised tar whose sha256 is the
revision's identity. Nothing unsafe reaches a host: absolute paths, ``..``, links that leave the
bundle, hard links and device files are refused before any host is contacted.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import functools
import hashlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from orchestrator.errors import AppSpecError, ConfigIssue, RevisionError
from orchestrator.models.appspec import MAX_APPSPEC_BYTES, AppSpec, parse_appspec
from orchestrator.models.source import check_size, decode_utf8
from orchestrator.models.text import control_problem, shown
from orchestrator.private_paths import FILE_MODE, private_dir, tighten

EntryKind = Literal["file", "dir", "symlink"]
SourceKind = Literal["directory", "tar", "tgz", "zip", "git"]
APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
_APPSPEC_LIKE = re.compile("appspec", re.IGNORECASE)
_MAX_REPORTED = 20
_SPECIAL = "device, fifo or socket: only files, directories and symbolic links are allowed"
_MAX_LINK_HOPS = 40  # Linux's own limit on links followed in one path lookup


@dataclass(frozen=True, slots=True)  # slots: a revision may have hundreds of thousands
class ManifestEntry:
    """One entry of the normalised bundle, by its path relative to the bundle root."""

    path: str
    kind: EntryKind
    mode: int
    size: int = 0
    target: str | None = None  # symlinks only


@dataclass(frozen=True)
class Revision:
    source: str
    kind: SourceKind
    tar_path: Path
    sha256: str
    size: int
    entries: tuple[ManifestEntry, ...]
    appspec: AppSpec
    commit: str | None = None

    def entry(self, path: str) -> ManifestEntry | None:
        return self._index().get(path)

    def _index(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}


@dataclass(slots=True)
class _RawEntry:
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


def _entry_problem(entry: _RawEntry) -> str | None:
    name = entry.name
    for text in (name, entry.target or ""):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Read with surrogateescape: the cleanup file, the install instructions and the
            # host's replies are UTF-8, so such a name could be installed but never removed.
            return f"'{shown(text)}' is not UTF-8: only UTF-8 names and link targets are allowed"
        problem = control_problem(text)
        if problem is not None:
            return problem
    if name.startswith("/"):
        return "absolute path"
    if ".." in name.split("/"):
        return "path climbs out of the bundle with '..'"
    if entry.kind == "symlink":
        target = entry.target or ""
        if target.startswith("/"):
            return f"symbolic link to an absolute path '{target}'"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"symbolic link '{target}' points outside the bundle"
    return None


def _link_problems(entries: list[_RawEntry], prefix: str) -> list[str]:
    """Links followed as the host's filesystem will follow them, through the bundle's other
    links: ``d/e/p -> ../..`` stays in the bundle, ``d/e/q -> p/../..`` does not (``p`` is
    followed first, then ``../..`` climbs from where it leads). An entry below a link would be
    written wherever that link points: refused too."""
    links = {
        e.name[len(prefix) :]: e.target or ""
        for e in entries
        if e.kind == "symlink" and e.name.startswith(prefix)
    }
    if not links:
        return []
    problems = []
    # Names below a link share its prefix, so they sit together in sorted order: a bisect per
    # link instead of every ancestor of every name (a node_modules tree has both in thousands).
    names = sorted(e.name[len(prefix) :] for e in entries)
    for link, target in sorted(links.items()):
        below = bisect.bisect_left(names, link + "/")
        while below < len(names) and names[below].startswith(link + "/"):
            problems.append(
                f"{prefix}{names[below]}: lies below the symbolic link '{prefix}{link}'"
            )
            below += 1
        why = _resolve(posixpath.dirname(link), target, links)
        if why is not None:
            problems.append(f"{prefix}{link}: symbolic link '{target}' {why}")
    return problems


def _resolve(directory: str, target: str, links: dict[str, str]) -> str | None:
    """Why following ``target`` from ``directory`` leaves the bundle root, or None."""
    reached = [part for part in directory.split("/") if part]
    pending = list(reversed(target.split("/")))
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not reached:
                return "points outside the bundle (through the links it passes)"
            reached.pop()
            continue
        reached.append(part)
        link = links.get("/".join(reached))
        if link is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            return "passes through too many symbolic links"
        if link.startswith("/"):
            return f"passes through a link to an absolute path '{link}'"
        reached.pop()
        pending.extend(reversed(link.split("/")))
    return None


# -- readers: each yields _RawEntry for one kind of source ---------------------------------------


def _read_directory(root: Path) -> Iterator[_RawEntry | str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            info = full.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                yield _RawEntry(rel, "symlink", 0o777, 0, info.st_mtime, os.readlink(full), None)
            elif stat.S_ISDIR(info.st_mode):
                yield _RawEntry(rel, "dir", mode, 0, info.st_mtime, None, None)
            elif stat.S_ISREG(info.st_mode):
                yield _RawEntry(
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


def _tar_member(member: tarfile.TarInfo, archive: tarfile.TarFile) -> _RawEntry | str:
    name = _clean_name(member.name)
    mode = member.mode & 0o7777
    if member.isdir():
        return _RawEntry(name, "dir", mode, 0, member.mtime, None, None)
    if member.issym():
        return _RawEntry(name, "symlink", 0o777, 0, member.mtime, member.linkname, None)
    if member.islnk():
        return f"{name}: hard link to '{member.linkname}': hard links are not allowed"
    if member.isreg():
        return _RawEntry(
            name, "file", mode, member.size, member.mtime, None, lambda: _extract(archive, member)
        )
    return f"{name}: {_SPECIAL}"


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = archive.extractfile(member)
    if handle is None:  # only for non-regular members, which never get here
        raise RevisionError.single(str(archive.name or "archive"), f"cannot read {member.name}")
    return handle


def _read_tar(path: Path) -> Iterator[_RawEntry | str]:
    try:
        with tarfile.open(path, "r:*") as archive:
            while (member := archive.next()) is not None:
                _forget_members(archive)
                if _clean_name(member.name) in ("", "."):
                    continue
                yield _tar_member(member, archive)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RevisionError.single(str(path), f"not a readable tar archive: {exc}") from exc


def _forget_members(archive: tarfile.TarFile) -> None:
    """TarFile keeps every header it reads or writes (about 500 bytes an entry, 100 MB for a
    revision of 200,000 files) for lookups by name that nothing here makes."""
    archive.members.clear()  # type: ignore[attr-defined]  # typeshed leaves the attribute out


def _read_zip(path: Path) -> Iterator[_RawEntry | str]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = _clean_name(info.filename)
                if not name:
                    continue
                unix_mode = info.external_attr >> 16
                mtime = _zip_mtime(info)
                if info.is_dir():
                    yield _RawEntry(
                        name, "dir", stat.S_IMODE(unix_mode) or 0o755, 0, mtime, None, None
                    )
                elif stat.S_ISLNK(unix_mode):
                    target = archive.read(info).decode("utf-8", "surrogateescape")
                    yield _RawEntry(name, "symlink", 0o777, 0, mtime, target, None)
                elif unix_mode and not stat.S_ISREG(unix_mode):
                    yield f"{name}: {_SPECIAL}"
                else:
                    mode = stat.S_IMODE(unix_mode) or 0o644
                    yield _RawEntry(
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


def _open_source(spec: str, workdir: Path) -> tuple[SourceKind, Path, str | None]:
    if spec.startswith("git:"):
        path, commit = _git_archive(spec, workdir)
        return "git", path, commit
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
        spec, "unknown revision type: give a directory, .tar, .tar.gz, .tgz, .zip or git:REPO@REF"
    )


def _entries(kind: SourceKind, path: Path) -> Iterator[_RawEntry | str]:
    if kind == "directory":
        return _read_directory(path)
    if kind == "zip":
        return _read_zip(path)
    return _read_tar(path)


# -- building ----------------------------------------------------------------------------------


def _strip_prefix(names: list[str], kinds: dict[str, EntryKind]) -> str:
    """The agent's rule: one top-level entry, a directory, holding an appspec-like file."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) != 1:
        return ""
    top = next(iter(tops))
    if kinds.get(top, "dir") != "dir":
        return ""
    children = [n[len(top) + 1 :] for n in names if n.startswith(top + "/")]
    if any("/" not in child and _APPSPEC_LIKE.search(child) for child in children):
        return top + "/"
    return ""


def _manifest(entries: list[_RawEntry], prefix: str) -> tuple[ManifestEntry, ...]:
    found: dict[str, ManifestEntry] = {}
    for entry in entries:
        name = entry.name[len(prefix) :]
        if not name:
            continue
        found[name] = ManifestEntry(name, entry.kind, entry.mode, entry.size, entry.target)
        parent = posixpath.dirname(name)
        while parent and parent not in found:  # archives may omit directory entries
            found[parent] = ManifestEntry(parent, "dir", 0o755)
            parent = posixpath.dirname(parent)
    return tuple(sorted(found.values(), key=lambda e: e.path))


def _write_tar(kind: SourceKind, source: Path, prefix: str, out: Path) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as bundle:
        for item in _entries(kind, source):
            if isinstance(item, str):  # checked in the first pass; cannot happen now
                raise RevisionError.single(str(source), item)
            name = item.name[len(prefix) :]
            if not name:
                continue
            info = tarfile.TarInfo(name)
            info.mode = item.mode
            info.mtime = int(item.mtime)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if item.kind == "dir":
                info.type = tarfile.DIRTYPE
                bundle.addfile(info)
            elif item.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = item.target or ""
                bundle.addfile(info)
            else:
                assert item.open is not None
                info.size = item.size
                with item.open() as data:
                    bundle.addfile(info, data)
            _forget_members(bundle)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_appspec(kind: SourceKind, source: Path, prefix: str, entries: list[_RawEntry]) -> AppSpec:
    by_name = {e.name[len(prefix) :]: e for e in entries}
    for candidate in APPSPEC_NAMES:
        entry = by_name.get(candidate)
        if entry is not None and entry.kind == "file":
            file = f"{source}:{candidate}" if kind != "directory" else str(source / candidate)
            data = _read_member(kind, source, entry.name, MAX_APPSPEC_BYTES)
            check_size(len(data), MAX_APPSPEC_BYTES, file, AppSpecError)
            return parse_appspec(decode_utf8(data, file, AppSpecError), file)
    raise AppSpecError.single(str(source), "no appspec.yml (or appspec.yaml) at the bundle root")


def _read_member(kind: SourceKind, source: Path, name: str, limit: int) -> bytes:
    """The member's first ``limit + 1`` bytes: enough to tell that it is too big."""
    for item in _entries(kind, source):
        if not isinstance(item, str) and item.name == name and item.open is not None:
            with item.open() as data:
                return data.read(limit + 1)
    raise RevisionError.single(str(source), f"cannot read {name}")


def check_appspec_against_bundle(appspec: AppSpec, entries: tuple[ManifestEntry, ...]) -> None:
    """Every ``files`` source exists in the bundle and every hook script is a file in it."""
    index = {e.path: e for e in entries}
    doc = appspec.document
    issues: list[ConfigIssue] = []
    for i, mapping in enumerate(appspec.model.files):
        if mapping.source and mapping.source not in index:
            issues.append(
                doc.issue(("files", i, "source"), f"'{mapping.source}' is not in the bundle")
            )
    for event, scripts in appspec.model.hooks:
        for i, script in enumerate(scripts):
            entry = index.get(script.location)
            if entry is None:
                message = f"hook script '{script.location}' is not in the bundle"
            elif entry.kind == "dir":
                message = f"hook script '{script.location}' is a directory"
            else:
                continue
            issues.append(doc.issue(("hooks", event, i, "location"), message))
    if issues:
        raise AppSpecError(issues)


def _private_cache(cache_dir: Path) -> None:
    """The bundle cache as 0700 holding 0600 bundles. Unlike ``--state``, the directory is
    orchestrator's own (``bundles`` under the cache), so one an older version left open to all
    is closed, with the bundles in it (they may hold files the appspec installs 0600)."""
    if cache_dir.is_dir() and not cache_dir.is_symlink():
        with contextlib.suppress(OSError):
            if stat.S_IMODE(cache_dir.stat().st_mode) & 0o077:
                cache_dir.chmod(0o700)
                for bundle in cache_dir.glob("*.tar"):
                    tighten(bundle)
    private_dir(cache_dir)


def build_revision(spec: str, cache_dir: Path) -> Revision:
    """Read, check and normalise a revision into ``cache_dir/<sha256>.tar``."""
    _private_cache(cache_dir)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        workdir = Path(tmp)
        kind, source, commit = _open_source(spec, workdir)
        entries: list[_RawEntry] = []
        problems: list[ConfigIssue] = []
        for item in _entries(kind, source):
            if isinstance(item, str):
                problems.append(ConfigIssue(spec, None, "", item))
                continue
            problem = _entry_problem(item)
            if problem is not None:
                problems.append(ConfigIssue(spec, None, "", f"{item.name}: {problem}"))
            # The first pass keeps no way to open an entry: a tar's would keep the archive, and
            # every member's header, alive (about 1 KB an entry).
            item.open = None
            entries.append(item)
        if problems:
            raise RevisionError(problems[:_MAX_REPORTED])
        kinds = {e.name: e.kind for e in entries}
        prefix = _strip_prefix([e.name for e in entries], kinds)
        links = _link_problems(entries, prefix)
        if links:
            raise RevisionError(
                [ConfigIssue(spec, None, "", text) for text in links[:_MAX_REPORTED]]
            )
        appspec = _read_appspec(kind, source, prefix, entries)
        manifest = _manifest(entries, prefix)
        check_appspec_against_bundle(appspec, manifest)
        staged = workdir / "bundle.tar"
        _write_tar(kind, source, prefix, staged)
        sha = _sha256(staged)
        final = cache_dir / f"{sha}.tar"
        staged.chmod(FILE_MODE)
        tighten(final)  # a bundle an older version cached readable to all
        if not final.exists():
            with contextlib.suppress(FileExistsError):
                shutil.move(staged, final)
        return Revision(
            source=spec,
            kind=kind,
            tar_path=final,
            sha256=sha,
            size=final.stat().st_size,
            entries=manifest,
            appspec=appspec,
            commit=commit,
        )
