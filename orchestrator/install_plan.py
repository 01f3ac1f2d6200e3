"""The Install step's instructions, computed on the controller from the manifest (pure, no I/O).

The host only executes them (``hostproto/programs/install.sh``), in one round trip. What the
previous install owns (to remove it, or to adopt a file already at a destination) the host reads
from its own cleanup file: it never travels, so the stream is the same for every host. The rules
are the CodeDeploy agent's (codedeploy-semantics §2.2-§2.4): a file source lands at
``destination/basename``, a directory source's *contents* go into ``destination``, missing
ancestors are created top-down, two mappings onto one path are an error, and ``permissions`` apply
only to paths this install creates, strictly below their object, each path from one rule only.

How the plan travels (the stream ``install.sh`` reads) is the host protocol's business:
``hostproto/install_stream.py``.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field, replace

from orchestrator.errors import AppSpecError, ConfigIssue
from orchestrator.models.appspec import AppSpec, Permission
from orchestrator.revision import ManifestEntry, Revision

RENDERED_DIRECTORY = "rendered"  # in the deployment directory: each host's rendered templates


@dataclass(frozen=True, slots=True)  # slots: one per entry of a revision, and there may be many
class Instruction:
    kind: str  # "mkdir" or "copy"
    index: int
    destination: str
    source: str = ""  # archive-relative, for copies


@dataclass
class InstallPlan:
    behavior: str
    instructions: list[Instruction] = field(default_factory=list)
    permissions: list[tuple[int, Permission, str]] = field(default_factory=list)
    # Every host gets the same stream (``hostproto.install_stream``): made once, kept here (the
    # audit document alone was 4% of a 100-host rollout).
    stream: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def copies(self) -> list[Instruction]:
        return [i for i in self.instructions if i.kind == "copy"]


def rendered_member(index: int, destination: str) -> str:
    """The appspec's ``index``-th template's rendering in a host's tar of them: named as its
    destination, since Install copies a file into its destination's directory, name and all."""
    return f"{index}/{posixpath.basename(destination)}"


def rendered_path(index: int, destination: str) -> str:
    """Where the host keeps that rendering, relative to the archive (the controller writes it;
    no bundle path can climb out with ``..``)."""
    return f"../{RENDERED_DIRECTORY}/{rendered_member(index, destination)}"


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1)]


class _Builder:
    def __init__(self, appspec: AppSpec, entries: tuple[ManifestEntry, ...], behavior: str) -> None:
        self.appspec = appspec
        self.entries = entries
        self.plan = InstallPlan(behavior)
        self.by_destination: dict[str, Instruction] = {}
        self.issues: list[ConfigIssue] = []

    def issue(self, path: tuple[str | int, ...], message: str) -> None:
        self.issues.append(self.appspec.document.issue(path, message))

    def add(self, kind: str, destination: str, source: str, where: tuple[str | int, ...]) -> None:
        existing = self.by_destination.get(destination)
        if existing is not None:
            if kind == "mkdir" and existing.kind == "mkdir":
                return  # two mappings may share directories
            self.issue(where, f"'{destination}' is installed by more than one files mapping")
            return
        step = Instruction(kind, len(self.plan.instructions), destination, source)
        self.plan.instructions.append(step)
        self.by_destination[destination] = step

    def files(self) -> None:
        for i, mapping in enumerate(self.appspec.model.files):
            where = ("files", i)
            source = mapping.source
            for directory in _ancestors(mapping.destination):
                self.add("mkdir", directory, "", where)
            entry = next((e for e in self.entries if e.path == source), None)
            if source and entry is not None and entry.kind != "dir":
                target = posixpath.join(mapping.destination, posixpath.basename(source))
                self.add("copy", target, source, where)
                continue
            prefix = f"{source}/" if source else ""
            for item in self.entries:
                if not item.path.startswith(prefix):
                    continue
                target = posixpath.join(mapping.destination, item.path[len(prefix) :])
                self.add("mkdir" if item.kind == "dir" else "copy", target, item.path, where)

    def templates(self) -> None:
        """Each template's rendering lands at its destination as a file of the bundle would:
        checked against the other mappings, permissioned and cleaned up alike. Its source is the
        host's rendering in the deployment directory (``rendered_path``), beside the archive."""
        entries = {entry.path: entry for entry in self.entries}
        for i, mapping in enumerate(self.appspec.model.templates):
            where = ("templates", i)
            entry = entries.get(mapping.source)
            if entry is None or entry.kind != "file":
                self.issue(
                    (*where, "source"),
                    f"template '{mapping.source}' is not a regular file of the bundle",
                )
                continue
            for directory in _ancestors(posixpath.dirname(mapping.destination)):
                self.add("mkdir", directory, "", where)
            self.add("copy", mapping.destination, rendered_path(i, mapping.destination), where)

    def permissions(self) -> None:
        owner_rule: dict[str, int] = {}
        for r, rule in enumerate(self.appspec.model.permissions):
            where = ("permissions", r)
            obj = rule.object
            step = self.by_destination.get(obj)
            if step is not None and step.kind == "copy" and "file" in rule.type:
                if rule.pattern != "**" or rule.except_:
                    self.issue(
                        where, f"'{obj}' is a file: pattern and except apply only to directories"
                    )
                    continue
                self.claim(owner_rule, r, step, where)
                continue
            for candidate in self.plan.instructions:
                relative = candidate.destination[len(obj) + 1 :]
                if not candidate.destination.startswith(obj.rstrip("/") + "/") or not relative:
                    continue
                wanted = "file" if candidate.kind == "copy" else "directory"
                if wanted not in rule.type or not _matches(rule, relative):
                    continue
                self.claim(owner_rule, r, candidate, where)

    def claim(
        self,
        owner_rule: dict[str, int],
        rule_index: int,
        step: Instruction,
        where: tuple[str | int, ...],
    ) -> None:
        if step.destination in owner_rule:
            self.issue(
                where, f"permissions setting for '{step.destination}' is specified more than once"
            )
            return
        owner_rule[step.destination] = rule_index
        rule = self.appspec.model.permissions[rule_index]
        self.plan.permissions.append((step.index, rule, step.destination))


def _matches(rule: Permission, relative: str) -> bool:
    """``**`` matches every descendant; other globs and excepts only immediate children."""
    if any("/" not in relative and fnmatch.fnmatchcase(relative, e) for e in rule.except_):
        return False
    if rule.pattern == "**":
        return True
    return "/" not in relative and fnmatch.fnmatchcase(relative, rule.pattern)


def build_install_plan(
    appspec: AppSpec, entries: tuple[ManifestEntry, ...], behavior: str
) -> InstallPlan:
    """The Install instructions; ``AppSpecError`` for conflicting mappings or rules."""
    builder = _Builder(appspec, entries, behavior)
    builder.files()
    builder.templates()
    builder.permissions()
    if builder.issues:
        raise AppSpecError(builder.issues)
    return builder.plan


def plan_for(revision: Revision, behavior: str) -> InstallPlan:
    """The revision's install plan, built (and checked) once per revision: the file-exists
    behavior only tells hosts what to do with files in the way, so every behavior's plan shares
    the instructions of the first."""
    plans: dict[str, InstallPlan] = revision.install_plans
    if behavior not in plans:
        built = next(iter(plans.values()), None)
        plans[behavior] = (
            build_install_plan(revision.appspec, revision.entries, behavior)
            if built is None
            else replace(built, behavior=behavior)
        )
    return plans[behavior]
