"""What a deployment produced, in CodeDeploy's shapes: Deployment, Target, LifecycleEvent.

The engine fills these in as it goes; ``to_document`` gives the JSON document of DESIGN §3 (a
contract), which ``rollout --output json``, ``status --output json`` and the history store share.
"""

from __future__ import annotations

import datetime
import enum
import secrets
import string
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """The one spelling of a status, CodeDeploy's (its API enums, codedeploy-semantics §7.2): a
    deployment is Created, InProgress, Succeeded, Failed or Stopped; a target and a lifecycle
    event are Pending, InProgress, Succeeded, Failed or Skipped. The values are what documents,
    the history and ``--output json`` hold."""

    CREATED = "Created"
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    STOPPED = "Stopped"


# A deployment's overview counts its targets by these, in this order (DESIGN §3).
TARGET_STATUSES = (
    Status.PENDING,
    Status.IN_PROGRESS,
    Status.SUCCEEDED,
    Status.FAILED,
    Status.SKIPPED,
)
LOG_TAIL_BYTES = 2048
# What the history keeps of an event's output (`orchestrator logs`): its last 128 KiB. A hook's
# whole output stays in the deployment's logs/scripts.log on the host.
OUTPUT_CAP_BYTES = 128 * 1024


def new_deployment_id() -> str:
    """``d-`` and 9 characters, like CodeDeploy's ids."""
    alphabet = string.ascii_uppercase + string.digits
    return "d-" + "".join(secrets.choice(alphabet) for _ in range(9))


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(
        timespec="milliseconds"
    )


def epoch(text: str | None) -> float | None:
    return None if not text else datetime.datetime.fromisoformat(text).timestamp()


def log_tail(text: str, limit: int = LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of ``text``, as whole lines."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    cut = data[-limit:]
    newline = cut.find(b"\n")
    if 0 <= newline < len(cut) - 1:
        cut = cut[newline + 1 :]
    return cut.decode("utf-8", errors="replace")


def capped_output(text: str, capped: bool, rest: str, limit: int = OUTPUT_CAP_BYTES) -> str:
    """``text`` as the history keeps it: its last ``limit`` bytes as whole lines, after a line
    that says so and where ``rest`` is, when it is longer (or was ``capped`` already)."""
    kept = log_tail(text, limit)
    if not capped and kept is text:
        return text
    return f"[output capped: only its last {limit // 1024} KiB are kept here; {rest}]\n{kept}"


@dataclass
class Diagnostics:
    error_code: str
    script_name: str = ""
    message: str = ""
    log_tail: str = ""

    def to_document(self) -> dict[str, str]:
        return {
            "errorCode": self.error_code,
            "scriptName": self.script_name,
            "message": self.message,
            "logTail": self.log_tail,
        }

    @classmethod
    def from_document(cls, document: dict[str, str] | None) -> Diagnostics | None:
        if not document:
            return None
        return cls(
            document["errorCode"],
            document.get("scriptName", ""),
            document.get("message", ""),
            document.get("logTail", ""),
        )


@dataclass
class LifecycleEvent:
    name: str
    status: Status = Status.PENDING
    start_time: float | None = None
    end_time: float | None = None
    diagnostics: Diagnostics | None = None
    # The event's output as the history keeps it (``capped_output``), not in the document.
    output: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "lifecycleEventName": self.name,
            "status": self.status.value,
            "startTime": iso(self.start_time),
            "endTime": iso(self.end_time),
        }
        if self.diagnostics is not None:
            document["diagnostics"] = self.diagnostics.to_document()
        if self.warnings:
            document["warnings"] = list(self.warnings)
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> LifecycleEvent:
        return cls(
            document["lifecycleEventName"],
            Status(document["status"]),
            epoch(document.get("startTime")),
            epoch(document.get("endTime")),
            Diagnostics.from_document(document.get("diagnostics")),
            warnings=list(document.get("warnings", [])),
        )


@dataclass
class Target:
    host: str
    address: str
    events: list[LifecycleEvent]
    status: Status = Status.PENDING
    zone: str | None = None

    def event(self, name: str) -> LifecycleEvent:
        return next(e for e in self.events if e.name == name)

    def to_document(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "zone": self.zone,
            "status": self.status.value,
            "lifecycleEvents": [e.to_document() for e in self.events],
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Target:
        events = [LifecycleEvent.from_document(e) for e in document["lifecycleEvents"]]
        return cls(
            document["host"],
            document["address"],
            events,
            Status(document["status"]),
            document.get("zone"),
        )


@dataclass
class RevisionInfo:
    source: str
    sha256: str
    size: int
    kind: str
    commit: str | None = None

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "type": self.kind,
        }
        if self.commit:
            document["commit"] = self.commit
        return document


@dataclass
class Deployment:
    deployment_id: str
    application: str
    group: str
    group_id: str
    revision: RevisionInfo
    config_name: str
    creator: str = "user"
    description: str = ""
    file_exists_behavior: str = "DISALLOW"
    ignore_application_stop_failures: bool = False
    status: Status = Status.CREATED
    error_code: str | None = None
    error_message: str | None = None
    create_time: float = 0.0
    complete_time: float | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    rollback_info: dict[str, Any] | None = None
    # The rules it runs under (``deploymentRules``: config, hook grace...), recorded when it
    # starts so that a resume and its automatic rollback use them, not today's inventory. None
    # in records from before they were recorded.
    rules: dict[str, Any] | None = None
    # Read from a store: still InProgress there, but the process that ran it is gone.
    interrupted: bool = False

    def overview(self) -> dict[str, int]:
        counts = dict.fromkeys(TARGET_STATUSES, 0)
        for target in self.targets.values():
            counts[target.status] = counts.get(target.status, 0) + 1
        return {status.value: count for status, count in counts.items()}

    def to_document(self, *, with_targets: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {
            "deploymentId": self.deployment_id,
            "applicationName": self.application,
            "deploymentGroupName": self.group,
            "deploymentGroupId": self.group_id,
            "deploymentConfigName": self.config_name,
            "creator": self.creator,
            "description": self.description,
            "status": self.status.value,
            "errorInformation": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code
                else None
            ),
            "deploymentOverview": self.overview(),
            "revision": self.revision.to_document(),
            "fileExistsBehavior": self.file_exists_behavior,
            "ignoreApplicationStopFailures": self.ignore_application_stop_failures,
            "rollbackInfo": self.rollback_info,
            "createTime": iso(self.create_time),
            "completeTime": iso(self.complete_time),
        }
        if self.rules is not None:
            document["deploymentRules"] = self.rules
        if with_targets:
            document["targets"] = [t.to_document() for t in self.targets.values()]
        if self.interrupted:
            document["interrupted"] = True
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Deployment:
        """The deployment a document describes (to resume it after a crash)."""
        revision = document["revision"]
        error = document.get("errorInformation") or {}
        return cls(
            deployment_id=document["deploymentId"],
            application=document["applicationName"],
            group=document["deploymentGroupName"],
            group_id=document["deploymentGroupId"],
            revision=RevisionInfo(
                revision["source"],
                revision["sha256"],
                revision["size"],
                revision["type"],
                revision.get("commit"),
            ),
            config_name=document["deploymentConfigName"],
            creator=document["creator"],
            description=document["description"],
            file_exists_behavior=document["fileExistsBehavior"],
            ignore_application_stop_failures=document["ignoreApplicationStopFailures"],
            status=Status(document["status"]),
            error_code=error.get("code"),
            error_message=error.get("message"),
            create_time=epoch(document["createTime"]) or 0.0,
            complete_time=epoch(document.get("completeTime")),
            targets={t["host"]: Target.from_document(t) for t in document.get("targets", [])},
            rollback_info=document.get("rollbackInfo"),
            rules=document.get("deploymentRules"),
            interrupted=bool(document.get("interrupted")),
        )
