"""The revision's ``appspec.yml`` (codedeploy-semantics §2): files, permissions and hooks.

The checks that need the bundle's contents (a hook location missing from the bundle, a ``files``
source that does not exist) live in ``orchestrator.revision``; this module checks the file alone.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from orchestrator.errors import AppSpecError, ConfigIssue
from orchestrator.models.source import MIB, YamlDocument, check_size, parse_yaml, validate_document
from orchestrator.models.text import AccountName, HostText, OptionSafeText

DEFAULT_HOOK_TIMEOUT = 3600
# An appspec lists hooks and file mappings: a few KB. The limit holds for the bundle's and for
# the one a host sends back from its last successful install (probe.sh sends no more).
MAX_APPSPEC_BYTES = 1 * MIB

# Every lifecycle event of an in-place deployment, in the order they run (reference §3.1).
LIFECYCLE_EVENTS: tuple[str, ...] = (
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)
# Events orchestrator performs itself: an appspec cannot attach scripts to them.
BUILTIN_EVENTS = frozenset({"BlockTraffic", "DownloadBundle", "Install", "AllowTraffic"})
HOOK_EVENTS: tuple[str, ...] = tuple(e for e in LIFECYCLE_EVENTS if e not in BUILTIN_EVENTS)
# The traffic events: they run only when the deployment group has a load balancer.
TRAFFIC_EVENTS = frozenset(e for e in LIFECYCLE_EVENTS if "Traffic" in e)
# Events whose scripts come from the last successful install, not from this revision.
PREVIOUS_REVISION_EVENTS = frozenset({"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"})


def inside_bundle(path: str) -> bool:
    """True when ``path`` is relative and cannot climb out of the bundle root."""
    if path.startswith("/") or not path:
        return False
    return ".." not in posixpath.normpath(path).split("/") and not posixpath.normpath(
        path
    ).startswith("..")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HookScript(_Strict):
    location: HostText = Field(min_length=1)
    timeout: int = Field(default=DEFAULT_HOOK_TIMEOUT, gt=0)
    runas: OptionSafeText | None = Field(default=None, min_length=1)

    @field_validator("location")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not inside_bundle(value):
            raise ValueError(
                f"hook location '{value}' is outside the bundle: give a path relative to it"
            )
        return posixpath.normpath(value)


HookList = Annotated[
    list[HookScript], BeforeValidator(lambda value: [] if value is None else value)
]


class Hooks(_Strict):
    """One optional script list per event that takes scripts; any other key is an error."""

    BeforeBlockTraffic: HookList = Field(default_factory=list)
    AfterBlockTraffic: HookList = Field(default_factory=list)
    ApplicationStop: HookList = Field(default_factory=list)
    BeforeInstall: HookList = Field(default_factory=list)
    AfterInstall: HookList = Field(default_factory=list)
    ApplicationStart: HookList = Field(default_factory=list)
    ValidateService: HookList = Field(default_factory=list)
    BeforeAllowTraffic: HookList = Field(default_factory=list)
    AfterAllowTraffic: HookList = Field(default_factory=list)

    def for_event(self, event: str) -> list[HookScript]:
        scripts: list[HookScript] = getattr(self, event, [])
        return scripts


class FileMapping(_Strict):
    source: HostText = Field(min_length=1)
    destination: HostText = Field(min_length=1)

    @field_validator("source")
    @classmethod
    def _source_inside(cls, value: str) -> str:
        stripped = value.lstrip("/")  # `source: /` means the whole bundle, as in CodeDeploy
        if stripped and not inside_bundle(stripped):
            raise ValueError(f"source '{value}' is outside the bundle")
        return posixpath.normpath(stripped) if stripped else ""

    @field_validator("destination")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"destination must be an absolute path, got '{value}'")
        return posixpath.normpath(value)


class TemplateMapping(_Strict):
    """A Jinja2 template of the bundle rendered per host and installed as one file
    (``orchestrator.templates``); an extension of orchestrator's, not CodeDeploy's."""

    source: HostText = Field(min_length=1)
    destination: HostText = Field(min_length=1)

    @field_validator("source")
    @classmethod
    def _source_inside(cls, value: str) -> str:
        if not inside_bundle(value):
            raise ValueError(f"template source '{value}' is outside the bundle")
        return posixpath.normpath(value)

    @field_validator("destination")
    @classmethod
    def _absolute_file(cls, value: str) -> str:
        if not value.startswith("/") or posixpath.normpath(value) == "/":
            raise ValueError(f"destination must be an absolute file path, got '{value}'")
        return posixpath.normpath(value)


def _mode_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_BOTH_TYPES: tuple[Literal["file", "directory"], ...] = ("file", "directory")


class SeLinuxContext(_Strict):
    # Sent as "user:type:range", of which the host takes the type: neither may hold ':'.
    user: AccountName | None = None
    type: AccountName
    range: HostText | None = None


class Permission(_Strict):
    object: HostText = Field(min_length=1)
    pattern: HostText = "**"
    except_: list[HostText] = Field(default_factory=list, alias="except")
    owner: AccountName | None = Field(default=None, min_length=1)
    group: AccountName | None = Field(default=None, min_length=1)
    mode: Annotated[str | None, BeforeValidator(_mode_text)] = None
    acls: list[Annotated[OptionSafeText, Field(min_length=1)]] = Field(default_factory=list)
    context: SeLinuxContext | None = None
    type: list[Literal["file", "directory"]] = Field(default_factory=lambda: list(_BOTH_TYPES))

    @field_validator("mode")
    @classmethod
    def _octal(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not (1 <= len(value) <= 4 and all(ch in "01234567" for ch in value)):
            raise ValueError(f"mode '{value}' is not 1 to 4 octal digits")
        return value.rjust(3, "0")

    @field_validator("object")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"object must be an absolute path, got '{value}'")
        return posixpath.normpath(value)


class AppSpecModel(_Strict):
    version: float | str
    os: str
    files: list[FileMapping] = Field(default_factory=list)
    templates: list[TemplateMapping] = Field(default_factory=list)
    permissions: list[Permission] = Field(default_factory=list)
    hooks: Hooks = Field(default_factory=Hooks)
    file_exists_behavior: Literal["DISALLOW", "OVERWRITE", "RETAIN"] | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: float | str) -> float | str:
        if str(value) != "0.0":
            raise ValueError(f"version must be 0.0, got '{value}'")
        return value

    @field_validator("os")
    @classmethod
    def _linux(cls, value: str) -> str:
        if value != "linux":
            raise ValueError(
                f"os must be 'linux' (the only platform orchestrator deploys to), got '{value}'"
            )
        return value


@dataclass(frozen=True)
class AppSpec:
    model: AppSpecModel
    document: YamlDocument

    @property
    def file(self) -> str:
        return self.document.file


def _rename_unknown_events(error: AppSpecError) -> AppSpecError:
    issues = []
    for issue in error.issues:
        message = issue.message
        if issue.path == "hooks" and message.startswith("unknown key '"):
            event = message[len("unknown key '") : -1]
            if event in BUILTIN_EVENTS:
                message = (
                    f"lifecycle event '{event}' is performed by orchestrator and takes no scripts"
                )
            else:
                message = f"unknown lifecycle event '{event}' (known: {', '.join(HOOK_EVENTS)})"
        issues.append(ConfigIssue(issue.file, issue.line, issue.path, message))
    return AppSpecError(issues)


def _quoted_modes(model: AppSpecModel, doc: YamlDocument) -> list[ConfigIssue]:
    # YAML 1.1 reads an unquoted 0644 as the octal integer 420: refuse rather than guess.
    issues = []
    for index, _ in enumerate(model.permissions):
        path = ("permissions", index, "mode")
        tag, text = doc.raw.get(path, ("", ""))
        if tag.endswith(":int") and text.startswith("0") and text != "0":
            issues.append(
                doc.issue(path, f"mode {text} must be quoted ('{text}'): YAML reads it as octal")
            )
    return issues


def parse_appspec(text: str, file: str = "appspec.yml") -> AppSpec:
    """Parse and validate an appspec; raise ``AppSpecError`` naming file, line and key."""
    check_size(len(text.encode()), MAX_APPSPEC_BYTES, file, AppSpecError)
    doc = parse_yaml(text, file, AppSpecError)
    try:
        model = validate_document(AppSpecModel, doc, AppSpecError)
    except AppSpecError as exc:
        raise _rename_unknown_events(exc) from exc
    issues = _quoted_modes(model, doc)
    if issues:
        raise AppSpecError(issues)
    return AppSpec(model=model, document=doc)
