"""Applications and their deployment groups in the inventory (DESIGN §2): which hosts a group
takes (tag sets, names), its deployment config, automatic rollback and triggers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from orchestrator.models.bundle_store import BundleStoreSpec
from orchestrator.models.hosts import TagKey, TagText
from orchestrator.models.text import GroupId
from orchestrator.models.traffic import MAX_ALARMS, Alarm, LoadBalancer
from orchestrator.models.webhook_text import (
    header_name_problem,
    header_value_problem,
    url_problem,
)

MAX_TAG_SETS = 3
MAX_TAGS_PER_SET = 10
FileExistsBehavior = Literal["DISALLOW", "OVERWRITE", "RETAIN"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    load_balancer: LoadBalancer | None = None
    alarms: list[Alarm] = Field(default_factory=list, max_length=MAX_ALARMS)
    ignore_poll_alarm_failure: bool = False
    alarm_poll_interval: float = Field(default=10, ge=0.5, le=300)  # no busy loop
    bundle_store: BundleStoreSpec | None = None  # hosts fetch the bundle from it


class Application(_Strict):
    deployment_groups: dict[str, DeploymentGroup] = Field(default_factory=dict)
