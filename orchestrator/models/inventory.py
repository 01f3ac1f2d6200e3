"""The inventory file (DESIGN §2, a contract): hosts with tags, applications, deployment groups.

``load_inventory`` parses, validates and cross-checks the file; every problem is reported with the
file, the line and the key path. ``Inventory.resolve_host`` merges a host with the defaults; what
neither sets of address, port, user, identity files and known_hosts stays None, for the operator's
ssh_config to decide when the transport connects (``transport/ssh_config.py``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from orchestrator.errors import ConfigIssue, InventoryError
from orchestrator.models.deployment_config import (
    DEFAULT_CONFIG,
    PREDEFINED,
    RESERVED_PREFIX,
    DeploymentConfig,
    DeploymentConfigSpec,
)
from orchestrator.models.source import (
    MIB,
    YamlDocument,
    check_size,
    load_yaml,
    parse_yaml,
    validate_document,
)
from orchestrator.models.text import GroupId, HostText
from orchestrator.models.webhook_text import (
    header_name_problem,
    header_value_problem,
    url_problem,
)

# Far above any fleet's (10 000 hosts take about 2 MB); the whole file is held and parsed at once.
MAX_INVENTORY_BYTES = 8 * MIB

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")
GROUP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "orchestrator.deployment-group")
MAX_TAG_SETS = 3
MAX_TAGS_PER_SET = 10
FileExistsBehavior = Literal["DISALLOW", "OVERWRITE", "RETAIN"]


def _scalar_to_str(value: Any) -> Any:
    # YAML reads `tier: 1` as an int and `canary: yes` as a bool; tags are strings in CodeDeploy.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


TagText = Annotated[str, BeforeValidator(_scalar_to_str), Field(min_length=1, max_length=256)]
TagKey = Annotated[str, BeforeValidator(_scalar_to_str), Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SshSettings(_Strict):
    """SSH client settings; every field is optional so a host can override just one."""

    identity_files: list[str] | None = None
    known_hosts: str | None = None
    host_key_policy: Literal["strict", "accept-new", "off"] | None = None
    config: str | None = None
    connect_timeout: float | None = Field(default=None, gt=0)
    keepalive_interval: float | None = Field(default=None, gt=0)
    # Off unless asked for: a forwarded agent lets whoever is root on the host (and every hook
    # run as the connecting user) sign in with the operator's keys while the session lasts.
    forward_agent: bool | None = None


class HostSettings(_Strict):
    """What ``defaults`` sets and a host may override."""

    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    deployment_root: HostText | None = None
    ssh: SshSettings | None = None
    become: Literal["sudo", "none"] | None = None
    max_revisions: int | None = Field(default=None, ge=1)

    @field_validator("deployment_root")
    @classmethod
    def _absolute_root(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"deployment_root must be an absolute path, got '{value}'")
        return value


class HostEntry(HostSettings):
    address: str | None = Field(default=None, min_length=1)  # None: ssh_config's HostName
    zone: str | None = None
    tags: dict[TagKey, TagText] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)


class TagFilter(_Strict):
    """``{key, value}`` KEY_AND_VALUE, ``{key}`` KEY_ONLY, ``{value}`` VALUE_ONLY."""

    key: TagKey | None = None
    value: TagText | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TagFilter:
        if self.key is None and self.value is None:
            raise ValueError("a tag filter needs a key, a value, or both")
        return self

    @property
    def kind(self) -> Literal["KEY_ONLY", "VALUE_ONLY", "KEY_AND_VALUE"]:
        if self.value is None:
            return "KEY_ONLY"
        if self.key is None:
            return "VALUE_ONLY"
        return "KEY_AND_VALUE"


AutoRollbackEvent = Literal[
    "DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST", "DEPLOYMENT_STOP_ON_ALARM"
]
TriggerEvent = Literal[
    "DeploymentStart",
    "DeploymentSuccess",
    "DeploymentFailure",
    "DeploymentStop",
    "DeploymentRollback",
    "InstanceStart",
    "InstanceSuccess",
    "InstanceFailure",
]


_DEFAULT_ROLLBACK_EVENTS: tuple[AutoRollbackEvent, ...] = ("DEPLOYMENT_FAILURE",)


class AutoRollback(_Strict):
    enabled: bool = False
    events: list[AutoRollbackEvent] = Field(default_factory=lambda: list(_DEFAULT_ROLLBACK_EVENTS))


def _checked(problem: Callable[[str], str | None]) -> Callable[[str], str]:
    def check(value: str) -> str:
        message = problem(value)
        if message is not None:
            raise ValueError(message)
        return value

    return check


def _header_value(value: str) -> str:
    # The message is under the header's key path, which names it; the value is never quoted.
    problem = header_value_problem(value)
    if problem is not None:
        raise ValueError(f"the value {problem}")
    return value


class Trigger(_Strict):
    name: str = Field(min_length=1)
    url: Annotated[str, AfterValidator(_checked(url_problem))]
    events: list[TriggerEvent] = Field(min_length=1)
    headers: dict[str, Annotated[str, AfterValidator(_header_value)]] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            _checked(header_name_problem)(name)
        return headers


class DeploymentGroup(_Strict):
    id: GroupId | None = None
    tag_sets: list[Annotated[list[TagFilter], Field(min_length=1, max_length=MAX_TAGS_PER_SET)]] = (
        Field(default_factory=list, max_length=MAX_TAG_SETS)
    )
    hosts: list[str] = Field(default_factory=list)
    deployment_config: str | None = None
    auto_rollback: AutoRollback = Field(default_factory=AutoRollback)
    triggers: list[Trigger] = Field(default_factory=list)
    file_exists_behavior: FileExistsBehavior | None = None
    ignore_application_stop_failures: bool = False


class Application(_Strict):
    deployment_groups: dict[str, DeploymentGroup] = Field(default_factory=dict)


class InventoryModel(_Strict):
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: dict[str, HostEntry] = Field(default_factory=dict)
    applications: dict[str, Application] = Field(default_factory=dict)
    deployment_configs: dict[str, DeploymentConfigSpec] = Field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedSsh:
    identity_files: tuple[str, ...] | None  # None: ssh_config's IdentityFile, else OpenSSH's
    known_hosts: str | None  # None: ssh_config's UserKnownHostsFile, else ~/.ssh/known_hosts
    host_key_policy: Literal["strict", "accept-new", "off"]
    config: str | None
    connect_timeout: float
    keepalive_interval: float
    forward_agent: bool = False


@dataclass(frozen=True)
class HostSpec:
    """A host with its settings merged: its own value, else the defaults', else ours. Address,
    port and user stay None when the inventory sets none of them: the transport takes them from
    ssh_config for the host's name, else OpenSSH's defaults (the name, 22, the local user)."""

    name: str
    address: str | None
    port: int | None
    user: str | None
    deployment_root: str
    ssh: ResolvedSsh
    become: Literal["sudo", "none"]
    max_revisions: int
    zone: str | None
    tags: dict[str, str]
    vars: dict[str, Any]

    @property
    def destination(self) -> str:
        """Where the host is reached, as far as the inventory says: ``address:port``, with the
        name standing in for an address (and no port) left to ssh_config."""
        where = self.address or self.name
        if self.port is None:
            return where
        return f"[{where}]:{self.port}" if ":" in where else f"{where}:{self.port}"


_BUILTIN_SSH = SshSettings(
    host_key_policy="strict",
    config="~/.ssh/config",
    connect_timeout=10,
    keepalive_interval=15,
    forward_agent=False,
)


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@dataclass(frozen=True)
class Inventory:
    """A validated inventory plus the document it came from (for error locations)."""

    model: InventoryModel
    document: YamlDocument

    @property
    def file(self) -> str:
        return self.document.file

    def group(self, application: str, group: str) -> DeploymentGroup:
        app = self.model.applications.get(application)
        if app is None:
            known = ", ".join(sorted(self.model.applications)) or "none"
            raise InventoryError.single(
                self.file,
                f"unknown application '{application}' (known: {known})",
                path="applications",
            )
        found = app.deployment_groups.get(group)
        if found is None:
            known = ", ".join(sorted(app.deployment_groups)) or "none"
            raise InventoryError.single(
                self.file,
                f"application '{application}' has no deployment group '{group}' (known: {known})",
                path=f"applications.{application}.deployment_groups",
            )
        return found

    def group_id(self, application: str, group: str) -> str:
        """The id used on hosts: the configured ``id``, else a UUIDv5 of ``app/group``."""
        configured = self.group(application, group).id
        return configured or str(uuid.uuid5(GROUP_ID_NAMESPACE, f"{application}/{group}"))

    def deployment_config(self, name: str) -> DeploymentConfig:
        if name in PREDEFINED:
            return PREDEFINED[name]
        spec = self.model.deployment_configs.get(name)
        if spec is None:
            known = ", ".join([*PREDEFINED, *sorted(self.model.deployment_configs)])
            raise InventoryError.single(
                self.file, f"unknown deployment config '{name}' (known: {known})"
            )
        return DeploymentConfig.from_spec(name, spec)

    def config_name_for(self, application: str, group: str, override: str | None = None) -> str:
        """CodeDeploy's chain: the deployment's choice, else the group's, else OneAtATime."""
        return override or self.group(application, group).deployment_config or DEFAULT_CONFIG

    def resolve_host(self, name: str) -> HostSpec:
        entry = self.model.hosts[name]
        defaults = self.model.defaults
        ssh_layers = [
            layer for layer in (entry.ssh, defaults.ssh, _BUILTIN_SSH) if layer is not None
        ]

        def ssh_value(field: str) -> Any:
            return _first(*(getattr(layer, field) for layer in ssh_layers))

        return HostSpec(
            name=name,
            address=entry.address,
            port=_first(entry.port, defaults.port),
            user=_first(entry.user, defaults.user),
            deployment_root=_first(
                entry.deployment_root, defaults.deployment_root, "/opt/orchestrator/deployment-root"
            ),
            ssh=ResolvedSsh(
                identity_files=_tuple_or_none(ssh_value("identity_files")),
                known_hosts=ssh_value("known_hosts"),
                host_key_policy=ssh_value("host_key_policy"),
                config=ssh_value("config"),
                connect_timeout=ssh_value("connect_timeout"),
                keepalive_interval=ssh_value("keepalive_interval"),
                forward_agent=ssh_value("forward_agent"),
            ),
            become=_first(entry.become, defaults.become, "sudo"),
            max_revisions=_first(entry.max_revisions, defaults.max_revisions, 5),
            zone=entry.zone,
            tags=dict(entry.tags),
            vars=dict(entry.vars),
        )


def _cross_check(model: InventoryModel, doc: YamlDocument) -> list[ConfigIssue]:
    """Rules that span sections: names, references from groups to hosts and configs."""
    issues: list[ConfigIssue] = []

    def check_name(kind: str, name: str, path: tuple[str | int, ...]) -> None:
        if not NAME_PATTERN.match(name):
            issues.append(
                doc.issue(path, f"{kind} name '{name}' must be 1-100 of [A-Za-z0-9._+=,@-]")
            )

    for host in model.hosts:
        check_name("host", host, ("hosts", host))
    for config in model.deployment_configs:
        check_name("deployment config", config, ("deployment_configs", config))
        if config.startswith(RESERVED_PREFIX):
            issues.append(
                doc.issue(
                    ("deployment_configs", config), f"the prefix '{RESERVED_PREFIX}' is reserved"
                )
            )
    for app_name, app in model.applications.items():
        check_name("application", app_name, ("applications", app_name))
        for group_name, group in app.deployment_groups.items():
            base: tuple[str | int, ...] = (
                "applications",
                app_name,
                "deployment_groups",
                group_name,
            )
            check_name("deployment group", group_name, base)
            for index, host in enumerate(group.hosts):
                if host not in model.hosts:
                    issues.append(doc.issue((*base, "hosts", index), f"unknown host '{host}'"))
            wanted = group.deployment_config
            if (
                wanted is not None
                and wanted not in PREDEFINED
                and wanted not in model.deployment_configs
            ):
                known = ", ".join([*PREDEFINED, *sorted(model.deployment_configs)])
                issues.append(
                    doc.issue(
                        (*base, "deployment_config"),
                        f"unknown deployment config '{wanted}' (known: {known})",
                    )
                )
    return issues


def _build(doc: YamlDocument) -> Inventory:
    model = validate_document(InventoryModel, doc, InventoryError)
    issues = _cross_check(model, doc)
    if issues:
        raise InventoryError(issues)
    return Inventory(model=model, document=doc)


def load_inventory(path: Path) -> Inventory:
    """Load and fully validate an inventory file; raise ``InventoryError`` listing every issue."""
    return _build(load_yaml(path, InventoryError, MAX_INVENTORY_BYTES))


def parse_inventory(text: str, file: str = "inventory.yaml") -> Inventory:
    """Like ``load_inventory`` for text already in memory (tests, generated inventories)."""
    check_size(len(text.encode()), MAX_INVENTORY_BYTES, file, InventoryError)
    return _build(parse_yaml(text, file, InventoryError))
