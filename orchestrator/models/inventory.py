"""The inventory file (DESIGN §2, a contract): hosts with tags, applications, deployment groups.

``load_inventory`` parses, validates and cross-checks the file; every problem is reported with the
file, the line and the key path. What a host is, and how it is merged with the defaults, is in
``models/hosts.py``; applications and deployment groups are in ``models/groups.py``. This module
holds the whole file and answers for it: a group by name, its id, its deployment config.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ConfigIssue, InventoryError
from orchestrator.models.deployment_config import (
    DEFAULT_CONFIG,
    PREDEFINED,
    RESERVED_PREFIX,
    DeploymentConfig,
    DeploymentConfigSpec,
)
from orchestrator.models.groups import Application, DeploymentGroup
from orchestrator.models.hosts import HostEntry, HostSettings, HostSpec, resolve_host
from orchestrator.models.source import (
    MIB,
    YamlDocument,
    check_size,
    load_yaml,
    parse_yaml,
    validate_document,
)

# Far above any fleet's (10 000 hosts take about 2 MB); the whole file is held and parsed at once.
MAX_INVENTORY_BYTES = 8 * MIB

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")
GROUP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "orchestrator.deployment-group")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InventoryModel(_Strict):
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: dict[str, HostEntry] = Field(default_factory=dict)
    applications: dict[str, Application] = Field(default_factory=dict)
    deployment_configs: dict[str, DeploymentConfigSpec] = Field(default_factory=dict)


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
        """The host named ``name`` with the defaults merged in."""
        return resolve_host(name, self.model.hosts[name], self.model.defaults)


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
            balancer = group.load_balancer
            run_on = getattr(balancer, "run_on", "controller")
            if run_on != "controller" and run_on not in model.hosts:
                issues.append(
                    doc.issue(
                        (*base, "load_balancer", "run_on"),
                        f"unknown host '{run_on}' (an inventory host, or 'controller')",
                    )
                )
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
