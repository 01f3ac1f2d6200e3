"""What makes a revision's entry unsafe to install: checked before any host is contacted.

Absolute paths, ``..``, names that are not UTF-8 or hold control characters, and symbolic links
that leave the bundle, directly or through the bundle's other links, or that other entries lie
below.
"""

from __future__ import annotations

import bisect
import posixpath

from orchestrator.models.text import control_problem, shown
from orchestrator.revision_sources import RawEntry

_MAX_LINK_HOPS = 40  # Linux's own limit on links followed in one path lookup


def entry_problem(entry: RawEntry) -> str | None:
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


def link_problems(entries: list[RawEntry], prefix: str) -> list[str]:
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
