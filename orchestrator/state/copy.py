"""``orchestrator state copy SRC DST``: a history from one store into another (SQLite to
PostgreSQL, or any backend to any).

Every deployment, with its targets, lifecycle events and their outputs, goes through the Store
protocol only (``state/base.py``): read with ``get`` and ``logs``, written with ``save`` and as
the events the engine would have sent, so any pair of backends works. Writes replace a
deployment's record by its id: copying twice leaves one copy. A deployment still InProgress in
the source is refused (it is still being written) unless it is interrupted (its controller is
gone); it is copied as it stands, and shows interrupted in the destination too. Stop requests
are not copied: they concern running deployments only.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field

from orchestrator.events import LifecycleEventFinished
from orchestrator.models.results import Status
from orchestrator.state.base import open_store

EVERYTHING = 1 << 62  # history()'s limit that takes every deployment


@dataclass
class Copied:
    source: str
    destination: str
    deployments: int = 0
    events: int = 0
    running: list[str] = field(default_factory=list)  # InProgress, not interrupted: not copied


def copy_history(source: str | None, destination: str | None) -> Copied:
    """Copy every deployment of ``source`` into ``destination`` (both ``--state`` forms)."""
    with (
        closing(open_store(source, readonly=True)) as reader,
        closing(open_store(destination)) as writer,
    ):
        if reader.location == writer.location:
            from orchestrator.errors import InvalidRequest  # noqa: PLC0415

            raise InvalidRequest(f"the source and the destination are one store: {reader.location}")
        copied = Copied(reader.location, writer.location)
        listed = reader.history(limit=EVERYTHING)
        for summary in reversed(listed):  # oldest first: the destination's order is the same
            deployment = reader.get(summary.deployment_id)
            if deployment is None:
                continue  # removed meanwhile
            if deployment.status == Status.IN_PROGRESS and not deployment.interrupted:
                copied.running.append(deployment.deployment_id)
                continue
            deployment.interrupted = False  # the destination judges that for itself
            outputs = {
                (entry.host, entry.event): entry.output
                for entry in reader.logs(deployment.deployment_id)
            }
            for target in deployment.targets.values():
                for event in target.events:
                    if event.status == Status.PENDING:
                        continue
                    event.output = outputs.get((target.host, event.name), event.output)
                    writer(LifecycleEventFinished(deployment, target, event))
                    copied.events += 1
            writer.save(deployment)
            copied.deployments += 1
        return copied
