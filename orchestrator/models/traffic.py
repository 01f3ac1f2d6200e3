"""A deployment group's load balancer and alarms in the inventory (codedeploy-semantics §3.1 and
§7.5): what the traffic events talk to and what may stop a deployment while it runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.models.text import HostText

MAX_ALARMS = 10  # CodeDeploy's limit per group (§7.5)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _runtime_api(value: str) -> str:
    if value.startswith("/"):
        return value
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"runtime_api '{value}' is neither HOST:PORT nor an absolute unix socket path"
        )
    return value


class HAProxyBalancer(_Strict):
    """HAProxy through its runtime API (``stats socket ... level admin``)."""

    type: Literal["haproxy"]
    runtime_api: Annotated[HostText, Field(min_length=1)]
    backend: Annotated[HostText, Field(min_length=1)]
    # The server's name in the backend; {name} is the host's inventory name.
    server: Annotated[HostText, Field(min_length=1)] = "{name}"
    drain_timeout: float = Field(default=300, ge=0, le=3600)
    health_timeout: float = Field(default=3600, gt=0, le=3600)

    @field_validator("runtime_api")
    @classmethod
    def _address(cls, value: str) -> str:
        return _runtime_api(value)

    def server_name(self, host: str) -> str:
        return self.server.replace("{name}", host)


class CommandBalancer(_Strict):
    """Any other load balancer: a command that takes a host out and one that puts it back,
    each given the host's name and address as its two arguments."""

    type: Literal["command"]
    block: Annotated[str, Field(min_length=1)]
    allow: Annotated[str, Field(min_length=1)]
    # "controller", or the inventory name of the host the commands run on over SSH.
    run_on: Annotated[HostText, Field(min_length=1)] = "controller"
    timeout: float = Field(default=600, gt=0, le=3600)


LoadBalancer = Annotated[HAProxyBalancer | CommandBalancer, Field(discriminator="type")]


class CommandAlarm(_Strict):
    """In alarm while the command exits non-zero; a command that cannot run or times out is an
    alarm that cannot be read."""

    type: Literal["command"]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    command: Annotated[str, Field(min_length=1)]
    timeout: float = Field(default=30, gt=0, le=600)


class HttpAlarm(_Strict):
    """In alarm while the URL answers with a status outside 200-299; no answer at all is an
    alarm that cannot be read."""

    type: Literal["http"]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    url: Annotated[str, Field(pattern=r"^https?://")]
    timeout: float = Field(default=10, gt=0, le=600)


class PrometheusAlarm(_Strict):
    """In alarm while the PromQL query returns a non-empty result (write the condition into the
    query: ``rate(errors_total[1m]) > 0``)."""

    type: Literal["prometheus"]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    url: Annotated[str, Field(pattern=r"^https?://")]  # the server, e.g. http://prom:9090
    query: Annotated[str, Field(min_length=1)]
    timeout: float = Field(default=10, gt=0, le=600)


Alarm = Annotated[CommandAlarm | HttpAlarm | PrometheusAlarm, Field(discriminator="type")]
