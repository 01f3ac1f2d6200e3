"""Who holds a deployment group's lock: the lines the controller sends with ``lock acquire``
(``lock.sh`` keeps them in the lock's holder file and prints them back with the deployment and
the heartbeat's age), and the document of this machine's own lock (``state/locks.py``)."""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class LockField(StrEnum):
    """The keys of ``lock.sh``'s sections: its own ("lock") and the holder's ("lock-holder",
    the lines the controller sent as HOLDER, then the deployment and the heartbeat's age)."""

    LOCK = "lock"
    ERROR = "error"
    HOLDER = "holder"  # user@machine of the controller
    PID = "pid"
    SINCE = "since"
    DEPLOYMENT = "deployment"
    HEARTBEAT_AGE = "heartbeat_age"


def _number(value: object) -> int | None:
    text = str(value) if value is not None else ""
    # ASCII only: "²".isdigit() is True, and int() refuses it.
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a group's lock: the controller's lines (``lines``, sent with ``lock acquire``,
    and kept by this machine's own lock), and what the host adds of it."""

    deployment: str | None = None
    holder: str | None = None  # user@machine of the controller that took it
    pid: int | None = None  # its process there
    since: str | None = None  # when it took it, UTC
    heartbeat_age: int | None = None  # seconds since its last heartbeat, by the host's clock

    @classmethod
    def here(cls, deployment_id: str | None = None) -> LockHolder:
        """This process, taking a lock (for ``deployment_id``: a lock request names its own)
        now."""
        return cls(
            deployment=deployment_id,
            holder=f"{getpass.getuser()}@{socket.gethostname()}",
            pid=os.getpid(),
            since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    @classmethod
    def of(cls, values: Mapping[str, object]) -> LockHolder:
        """From key=value lines (a reply's, or this machine's lock file's document)."""

        def get(key: LockField) -> str | None:
            value = values.get(key.value)
            return None if value is None else str(value)

        return cls(
            deployment=get(LockField.DEPLOYMENT),
            holder=get(LockField.HOLDER),
            pid=_number(values.get(LockField.PID.value)),
            since=get(LockField.SINCE),
            heartbeat_age=_number(values.get(LockField.HEARTBEAT_AGE.value)),
        )

    @classmethod
    def from_lines(cls, text: str) -> LockHolder:
        """From key=value lines; the first of a key counts."""
        values: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values.setdefault(key, value)
        return cls.of(values)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """What is known of it, as key=value pairs in the order the host prints them."""
        values = [
            (LockField.HOLDER, self.holder),
            (LockField.PID, self.pid),
            (LockField.SINCE, self.since),
            (LockField.DEPLOYMENT, self.deployment),
            (LockField.HEARTBEAT_AGE, self.heartbeat_age),
        ]
        return tuple((key.value, str(value)) for key, value in values if value is not None)

    def lines(self) -> str:
        """The controller's lines, as ``lock acquire`` is sent them (HOLDER): the host adds the
        deployment and the heartbeat's age."""
        own = {LockField.HOLDER.value, LockField.PID.value, LockField.SINCE.value}
        return "\n".join(f"{key}={value}" for key, value in self.pairs() if key in own)

    @property
    def known(self) -> bool:
        return bool(self.pairs())

    def describe(self) -> str:
        def shown(value: object) -> str:
            return "?" if value is None else str(value)

        return (
            f"{shown(self.deployment)} ({shown(self.holder)}, pid {shown(self.pid)}) "
            f"since {shown(self.since)}"
        )
