"""Hosts in the inventory (DESIGN §2): what a host and ``defaults`` may set, and a host resolved.

``resolve_host`` merges a host with the defaults; what neither sets of address, port, user,
identity files and known_hosts stays None, for the operator's ssh_config to decide when the
transport connects (``transport/ssh_config.py``). ``HostSpec`` is what the rest of orchestrator
knows of a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from orchestrator.models.text import HostText


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


def resolve_host(name: str, entry: HostEntry, defaults: HostSettings) -> HostSpec:
    """A host with its settings merged: its own, else the defaults', else the built-in ones."""
    ssh_layers = [layer for layer in (entry.ssh, defaults.ssh, _BUILTIN_SSH) if layer is not None]

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
