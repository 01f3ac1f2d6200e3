"""What a deployment call accepts (``DeployOptions``) and what is checked before anything is
built: the options themselves, the caller's thread (no running event loop) and the rules a
deployment recorded."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

from pydantic import ValidationError

from orchestrator.engine.rollout import HOOK_GRACE_SECONDS, Rollout
from orchestrator.errors import InvalidRequest, StoreError
from orchestrator.hostproto.requests import MAX_SECONDS
from orchestrator.models.bundle_store import BundleStoreSpec, endpoint_problem, s3_problem
from orchestrator.models.deployment_config import DeploymentRules
from orchestrator.models.groups import DeploymentGroup
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
    # s3://bucket/prefix: hosts fetch the bundle from there (the group's bundle_store with
    # this URL, or a store of its own); None: the group's, if it names one.
    bundle_store: str | None = None
    bundle_store_endpoint: str | None = None  # an S3-compatible store's endpoint URL

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
        # A URL that names no store is refused now, not once hosts are contacted.
        problem = (self.bundle_store and s3_problem(self.bundle_store)) or (
            self.bundle_store_endpoint and endpoint_problem(self.bundle_store_endpoint)
        )
        if problem:
            raise InvalidRequest(f"bundle store: {problem}")


def store_spec(group: BundleStoreSpec | None, options: DeployOptions) -> BundleStoreSpec | None:
    """The bundle store a deployment uses: the group's, with the options' URL and endpoint in
    place of its own; ``InvalidRequest`` for options that name none."""
    url, endpoint = options.bundle_store, options.bundle_store_endpoint
    if url is None and endpoint is None:
        return group
    if url is None and group is None:
        raise InvalidRequest("bundle_store_endpoint needs a bundle store (bundle_store)")
    changes = {"url": url} if url is not None else {}
    if endpoint is not None:
        changes["endpoint_url"] = endpoint
    base = group.model_dump(exclude_defaults=True) if group is not None else {}
    try:
        return BundleStoreSpec.model_validate({**base, **changes})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        raise InvalidRequest(f"bundle store: {problems}") from None


def with_bundle_store(rollout: Rollout, group: DeploymentGroup, options: DeployOptions) -> Rollout:
    """``rollout`` with the bundle store it uses, checked (the bucket is there and may be used)
    before any host is contacted: ``BundleStoreError`` otherwise."""
    spec = store_spec(group.bundle_store, options)
    if spec is None:
        return rollout
    from orchestrator.integrations.bundle_store import S3BundleStore  # noqa: PLC0415 - boto3

    store = S3BundleStore(spec)
    store.check()
    return replace(rollout, bundle_store=store)


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
