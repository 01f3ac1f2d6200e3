"""What a deployment call accepts (``DeployOptions``) and what is checked before anything is
built: the options themselves, the caller's thread (no running event loop) and the rules a
deployment recorded."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Literal, get_args

from orchestrator.engine.rollout import HOOK_GRACE_SECONDS
from orchestrator.errors import InvalidRequest, StoreError
from orchestrator.hostproto.requests import MAX_SECONDS
from orchestrator.models.deployment_config import DeploymentRules
from orchestrator.models.results import Deployment

FileExistsBehavior = Literal["DISALLOW", "OVERWRITE", "RETAIN"]


@dataclass(frozen=True)
class DeployOptions:
    """What every deployment accepts beyond its group and revision (the command line's options
    of the same names)."""

    config_name: str | None = None  # None: the group's deployment config, else OneAtATime
    description: str = ""
    file_exists_behavior: FileExistsBehavior | None = None  # the appspec's own setting wins
    ignore_application_stop_failures: bool = False
    auto_rollback: bool | None = None  # None: the group's auto_rollback setting
    update_outdated_only: bool = False
    lock_wait: float | None = None  # wait this long for the group's locks; None: do not wait
    hook_kill_grace: float = HOOK_GRACE_SECONDS

    def __post_init__(self) -> None:
        """Checked as the command line checks its options (``InvalidRequest``): a value it would
        refuse must not be recorded, or acted on as something else."""
        behaviors = get_args(FileExistsBehavior)
        if self.file_exists_behavior is not None and self.file_exists_behavior not in behaviors:
            raise InvalidRequest(
                f"file_exists_behavior {self.file_exists_behavior!r} is not one of "
                f"{', '.join(behaviors)}"
            )
        _check_seconds("hook_kill_grace", self.hook_kill_grace, MAX_SECONDS)
        if self.lock_wait is not None:
            _check_seconds("lock_wait", self.lock_wait, math.inf)


def _check_seconds(name: str, value: object, most: float) -> None:
    # bool is an int, but True seconds is a mistake; NaN fails every comparison.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= most:
        bound = "" if most == math.inf else f" and {most:g}"
        raise InvalidRequest(f"{name} must be a number of seconds between 0{bound}, not {value!r}")


def recorded_rules(recorded: Deployment, location: str) -> DeploymentRules | None:
    """The rules ``recorded`` ran under (None: recorded before they were); a record that does
    not hold them whole is damaged: a ``StoreError`` naming it, not a ``KeyError``."""
    if recorded.rules is None:
        return None
    try:
        return DeploymentRules.from_document(recorded.rules)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(
            location,
            f"cannot be read for deployment {recorded.deployment_id}",
            ValueError(f"a damaged record: its deploymentRules are unreadable ({exc!r})"),
        ) from exc


def outside_event_loop(call: str) -> None:
    """Checked first, before anything is built: in a running event loop the release cannot run
    (and would fail late, leaving a coroutine never awaited)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise InvalidRequest(
        f"{call}() blocks until the release ends and runs its own event loop: call it from a "
        f"thread, not in a running event loop (await asyncio.to_thread({call}, ...))"
    )
