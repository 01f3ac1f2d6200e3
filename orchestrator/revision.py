"""Revisions: a bundle from a directory, .tar, .tar.gz, .zip or a git ref, made into one tar.

``build_revision`` reads the source twice without holding file contents in memory: first the entry
list (to check every entry and decide whether a single top-level directory is stripped, as the
CodeDeploy agent does), then the contents, streamed into a normalised tar whose sha256 is the
revision's identity. Nothing unsafe reaches a host: absolute paths, ``..``, links that leave the
bundle, hard links and device files are refused before any host is contacted.

This module normalises: the prefix stripped, the manifest, the tar, the appspec read from it.
``revision_sources`` reads each kind of source; ``revision_checks`` says which entries are unsafe.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import AppSpecError, ConfigIssue, RevisionError
from orchestrator.models.appspec import MAX_APPSPEC_BYTES, AppSpec, parse_appspec
from orchestrator.models.source import check_size, decode_utf8
from orchestrator.private_paths import FILE_MODE, private_dir, tighten
from orchestrator.revision_checks import entry_problem, link_problems
from orchestrator.revision_sources import (
    EntryKind,
    RawEntry,
    SourceKind,
    forget_members,
    open_source,
    read_entries,
)

APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
_APPSPEC_LIKE = re.compile("appspec", re.IGNORECASE)
_MAX_REPORTED = 20


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
    # Its install plans by file-exists behavior (``install_plan.plan_for``): built once.
    install_plans: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def entry(self, path: str) -> ManifestEntry | None:
        return self._index().get(path)

    def _index(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}


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


def _manifest(entries: list[RawEntry], prefix: str) -> tuple[ManifestEntry, ...]:
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
        for item in read_entries(kind, source):
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
            forget_members(bundle)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_appspec(kind: SourceKind, source: Path, prefix: str, entries: list[RawEntry]) -> AppSpec:
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
    for item in read_entries(kind, source):
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
        kind, source, commit = open_source(spec, workdir)
        entries: list[RawEntry] = []
        problems: list[ConfigIssue] = []
        for item in read_entries(kind, source):
            if isinstance(item, str):
                problems.append(ConfigIssue(spec, None, "", item))
                continue
            problem = entry_problem(item)
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
        links = link_problems(entries, prefix)
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
