"""Deployment configurations: how many hosts must stay healthy, and zone by zone or not.

``DeploymentConfigSpec`` is what a user writes under ``deployment_configs:``; ``DeploymentConfig``
is the resolved form the scheduler reads, which also covers CodeDeploy's predefined configs
(OneAtATime uses the ``MOST_CONCURRENCY`` encoding, which users cannot write).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MinimumType = Literal["HOST_COUNT", "FLEET_PERCENT"]

ONE_AT_A_TIME = "CodeDeployDefault.OneAtATime"
HALF_AT_A_TIME = "CodeDeployDefault.HalfAtATime"
ALL_AT_ONCE = "CodeDeployDefault.AllAtOnce"
RESERVED_PREFIX = "CodeDeployDefault."
DEFAULT_CONFIG = ONE_AT_A_TIME


class MinimumHealthyHosts(BaseModel):
    """``{type: HOST_COUNT, value: n}`` (n >= 0) or ``{type: FLEET_PERCENT, value: p}`` (0..99)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MinimumType
    value: int = Field(ge=0)

    @model_validator(mode="after")
    def _percent_in_range(self) -> MinimumHealthyHosts:
        if self.type == "FLEET_PERCENT" and self.value > 99:
            raise ValueError(f"FLEET_PERCENT must be between 0 and 99, got {self.value}")
        return self

    def count_for(self, fleet: int) -> int:
        """The minimum as a host count for a fleet of ``fleet`` hosts (percentages round up)."""
        if self.type == "HOST_COUNT":
            return self.value
        return math.ceil(fleet * self.value / 100)


class ZonalConfigSpec(BaseModel):
    """Deploy one zone at a time, with bake times between zones and a per-zone minimum."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_zone_monitor_duration: int | None = Field(default=None, ge=0)
    monitor_duration: int | None = Field(default=None, ge=0)
    minimum_healthy_hosts_per_zone: MinimumHealthyHosts | None = None


class DeploymentConfigSpec(BaseModel):
    """A custom deployment config as written in the inventory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_healthy_hosts: MinimumHealthyHosts
    zonal: ZonalConfigSpec | None = None


@dataclass(frozen=True)
class ZonalSettings:
    first_zone_monitor_seconds: int
    monitor_seconds: int
    minimum_per_zone: MinimumHealthyHosts


@dataclass(frozen=True)
class DeploymentConfig:
    """A resolved deployment config, predefined or custom."""

    name: str
    minimum: MinimumHealthyHosts | None  # None encodes OneAtATime (MOST_CONCURRENCY)
    zonal: ZonalSettings | None = None

    @property
    def one_at_a_time(self) -> bool:
        return self.minimum is None

    def minimum_for(self, fleet: int) -> int:
        """CodeDeploy's m: the healthy-host count to keep, fixed when the deployment starts."""
        if self.minimum is None:
            return fleet - 1 if fleet > 1 else 0
        return self.minimum.count_for(fleet)

    def describe(self) -> str:
        if self.minimum is None:
            return "one host at a time (MOST_CONCURRENCY)"
        unit = "%" if self.minimum.type == "FLEET_PERCENT" else " hosts"
        text = f"minimum healthy {self.minimum.value}{unit}"
        if self.zonal is not None:
            text += f", zone by zone (per zone: {self.zonal.minimum_per_zone.value}"
            text += "%" if self.zonal.minimum_per_zone.type == "FLEET_PERCENT" else " hosts"
            text += ")"
        return text

    @classmethod
    def from_spec(cls, name: str, spec: DeploymentConfigSpec) -> DeploymentConfig:
        zonal = None
        if spec.zonal is not None:
            monitor = spec.zonal.monitor_duration or 0
            first = spec.zonal.first_zone_monitor_duration
            zonal = ZonalSettings(
                first_zone_monitor_seconds=monitor if first is None else first,
                monitor_seconds=monitor,
                minimum_per_zone=spec.zonal.minimum_healthy_hosts_per_zone
                or MinimumHealthyHosts(type="FLEET_PERCENT", value=0),
            )
        return cls(name=name, minimum=spec.minimum_healthy_hosts, zonal=zonal)

    def to_document(self) -> dict[str, Any]:
        """The resolved config as a deployment records it (``deploymentRules``)."""
        zonal = None
        if self.zonal is not None:
            zonal = {
                "firstZoneMonitorDurationInSeconds": self.zonal.first_zone_monitor_seconds,
                "monitorDurationInSeconds": self.zonal.monitor_seconds,
                "minimumHealthyHostsPerZone": self.zonal.minimum_per_zone.model_dump(),
            }
        return {
            "name": self.name,
            "minimumHealthyHosts": None if self.minimum is None else self.minimum.model_dump(),
            "zonalConfig": zonal,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> DeploymentConfig:
        minimum = document.get("minimumHealthyHosts")
        zonal = document.get("zonalConfig")
        return cls(
            name=document["name"],
            minimum=None if minimum is None else MinimumHealthyHosts(**minimum),
            zonal=None
            if zonal is None
            else ZonalSettings(
                first_zone_monitor_seconds=zonal["firstZoneMonitorDurationInSeconds"],
                monitor_seconds=zonal["monitorDurationInSeconds"],
                minimum_per_zone=MinimumHealthyHosts(**zonal["minimumHealthyHostsPerZone"]),
            ),
        )


@dataclass(frozen=True)
class DeploymentRules:
    """The rules one deployment runs under, recorded with it (``deploymentRules``) when it
    starts, so that resuming it and its automatic rollback follow them whatever the inventory
    says by then. The file-exists behavior and ignoreApplicationStopFailures have their own
    fields in the record."""

    config: DeploymentConfig
    hook_grace: float
    update_outdated_only: bool = False

    def to_document(self) -> dict[str, Any]:
        return {
            "deploymentConfig": self.config.to_document(),
            "hookKillGraceSeconds": self.hook_grace,
            "updateOutdatedOnly": self.update_outdated_only,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> DeploymentRules:
        return cls(
            DeploymentConfig.from_document(document["deploymentConfig"]),
            float(document["hookKillGraceSeconds"]),
            bool(document.get("updateOutdatedOnly", False)),
        )


PREDEFINED: dict[str, DeploymentConfig] = {
    ONE_AT_A_TIME: DeploymentConfig(ONE_AT_A_TIME, None),
    HALF_AT_A_TIME: DeploymentConfig(
        HALF_AT_A_TIME, MinimumHealthyHosts(type="FLEET_PERCENT", value=50)
    ),
    ALL_AT_ONCE: DeploymentConfig(ALL_AT_ONCE, MinimumHealthyHosts(type="HOST_COUNT", value=0)),
}
