"""The minimum-healthy-hosts scheduler (codedeploy-semantics §5.3). Pure code, no I/O.

The scheduler is a sliding window driven by the healthy count, not a series of barrier batches:
``healthy_idle`` counts hosts that are healthy, not in flight and not failed; a healthy host may
start only while ``healthy_idle - 1 >= m``, so every success lets one more host start. Hosts that
were unhealthy before the deployment start at once (they cannot lower the healthy count). The
engine drives it (``start_next``, ``record_success``, ``record_failure``) and ``plan`` simulates it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.models.deployment_config import DeploymentConfig
from orchestrator.models.results import Status
from orchestrator.selection import natural_key

HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
NO_INSTANCES = "NO_INSTANCES"
NO_ZONE = "(no zone)"


class Health(enum.Enum):
    """A host's health before the deployment, from its last deployment of this group."""

    HEALTHY = "Healthy"  # the last deployment to it succeeded
    UNHEALTHY = "Unhealthy"  # the last deployment to it failed
    NEW = "New"  # never deployed: ordered with Unhealthy, counted as healthy (DESIGN §5)


class RevisionState(enum.Enum):
    CURRENT = "Current"  # already has the target revision
    OLD = "Old"
    UNKNOWN = "Unknown"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED})
_REVISION_RANK = {RevisionState.UNKNOWN: 1, RevisionState.OLD: 2, RevisionState.CURRENT: 3}


@dataclass(frozen=True)
class TargetInfo:
    name: str
    health: Health = Health.NEW
    revision: RevisionState = RevisionState.UNKNOWN
    zone: str | None = None

    @property
    def counts_healthy(self) -> bool:
        return self.health is not Health.UNHEALTHY

    @property
    def order_class(self) -> int:
        """CodeDeploy's order: Unhealthy, then Unknown, Old, Current revision."""
        if self.health is not Health.HEALTHY:
            return 0
        return _REVISION_RANK[self.revision]


def order_targets(targets: Sequence[TargetInfo]) -> list[TargetInfo]:
    """Deterministic order: health class, then natural host name."""
    return sorted(targets, key=lambda t: (t.order_class, natural_key(t.name)))


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    error_code: str | None
    message: str


@dataclass
class _Zone:
    name: str
    hosts: list[str]
    minimum: int
    healthy_idle: int = 0


def invalid_minimum(config: DeploymentConfig, fleet: int) -> str | None:
    """Why ``fleet`` hosts can never keep ``config``'s minimum while deploying (CodeDeploy's
    HEALTH_CONSTRAINTS_INVALID), else None. Known from the selection alone, before any host
    is contacted."""
    minimum = config.minimum_for(fleet)
    if fleet == 0 or config.one_at_a_time or minimum < fleet:
        return None
    return (
        f"{config.name} needs {minimum} healthy hosts out of {fleet}: "
        "the minimum can never be kept while deploying"
    )


def success_rule(config: DeploymentConfig, fleet: int) -> str:
    """What the deployment needs to succeed, in words."""
    if fleet == 0:
        return "nothing: no hosts are selected"
    minimum = config.minimum_for(fleet)
    if config.one_at_a_time and fleet > 1:
        return f"every host to succeed; a failure on the last of the {fleet} hosts is tolerated"
    if not config.one_at_a_time and minimum >= fleet:
        return f"impossible: {minimum} healthy hosts must stay up out of {fleet}"
    return f"at least {max(minimum, 1)} of {fleet} hosts to succeed"


@dataclass
class Scheduler:
    """One deployment's start decisions. Not thread-safe; the engine calls it from one task."""

    config: DeploymentConfig
    targets: Sequence[TargetInfo]
    minimum: int = field(init=False)
    order: list[str] = field(init=False)
    states: dict[str, Status] = field(init=False)

    def __post_init__(self) -> None:
        fleet = len(self.targets)
        self.minimum = self.config.minimum_for(fleet)
        self._info = {t.name: t for t in self.targets}
        ordered = order_targets(self.targets)
        self._zones = self._build_zones(ordered)
        self.order = [name for zone in self._zones for name in zone.hosts]
        self.states = {name: Status.PENDING for name in self.order}
        self._zone_index = 0
        self._awaiting_next_zone = False
        self._healthy_idle = sum(1 for t in self.targets if t.counts_healthy)
        self._error: tuple[str, str] | None = None
        if fleet == 0:
            self._error = (NO_INSTANCES, "the deployment group selects no hosts")
        elif (invalid := invalid_minimum(self.config, fleet)) is not None:
            self._error = (HEALTH_CONSTRAINTS_INVALID, invalid)
            self._skip_pending()

    def _build_zones(self, ordered: list[TargetInfo]) -> list[_Zone]:
        if self.config.zonal is None:
            return [_Zone("", [t.name for t in ordered], 0, sum(t.counts_healthy for t in ordered))]
        by_zone: dict[str, list[TargetInfo]] = {}
        for target in ordered:
            by_zone.setdefault(target.zone or NO_ZONE, []).append(target)
        names = sorted((z for z in by_zone if z != NO_ZONE), key=natural_key)
        if NO_ZONE in by_zone:
            names.append(NO_ZONE)
        per_zone = self.config.zonal.minimum_per_zone
        return [
            _Zone(
                name,
                [t.name for t in by_zone[name]],
                per_zone.count_for(len(by_zone[name])),
                sum(t.counts_healthy for t in by_zone[name]),
            )
            for name in names
        ]

    # -- queries -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return all(state in TERMINAL for state in self.states.values())

    @property
    def in_flight(self) -> list[str]:
        return [n for n in self.order if self.states[n] is Status.IN_PROGRESS]

    @property
    def awaiting_next_zone(self) -> bool:
        """The current zone is done and another waits: bake, then ``begin_next_zone``."""
        return self._awaiting_next_zone

    @property
    def current_zone(self) -> str | None:
        return self._zones[self._zone_index].name if self.config.zonal else None

    def bake_seconds(self) -> int:
        """How long to monitor the zone that just finished before starting the next."""
        zonal = self.config.zonal
        if zonal is None:
            return 0
        return zonal.first_zone_monitor_seconds if self._zone_index == 0 else zonal.monitor_seconds

    def count(self, state: Status) -> int:
        return sum(1 for s in self.states.values() if s is state)

    # -- decisions -----------------------------------------------------------------------------

    def start_next(self) -> list[str]:
        """Hosts that may start now; they are marked in progress. Decides HEALTH_CONSTRAINTS."""
        if self._error is not None or self._awaiting_next_zone:
            return []
        zone = self._zones[self._zone_index]
        started: list[str] = []
        for name in zone.hosts:
            if self.states[name] is not Status.PENDING:
                continue
            if self._info[name].counts_healthy:
                if self._healthy_idle - 1 < self.minimum or zone.healthy_idle - 1 < zone.minimum:
                    continue
                self._healthy_idle -= 1
                zone.healthy_idle -= 1
            self.states[name] = Status.IN_PROGRESS
            started.append(name)
        if not started and not self.in_flight:
            self._after_idle(zone)
        return started

    def _after_idle(self, zone: _Zone) -> None:
        if any(self.states[n] is Status.PENDING for n in zone.hosts):
            failed = self.count(Status.FAILED)
            if self._healthy_idle - 1 >= self.minimum and zone.healthy_idle - 1 < zone.minimum:
                # The fleet could spare a host; the zone could not.
                limit = f"{zone.minimum} healthy host(s) in zone {zone.name}"
            else:
                limit = f"{self.minimum} healthy host(s)"
            self._error = (
                HEALTH_CONSTRAINTS,
                f"{failed} host(s) failed: deploying to another would leave fewer than {limit}",
            )
            self._skip_pending()
        elif self._zone_index + 1 < len(self._zones):
            self._awaiting_next_zone = True

    def begin_next_zone(self) -> None:
        if not self._awaiting_next_zone:
            raise RuntimeError("the current zone has not finished")
        self._awaiting_next_zone = False
        self._zone_index += 1

    def record_success(self, name: str) -> None:
        self._finish(name, Status.SUCCEEDED)
        self._healthy_idle += 1
        self._zone_of(name).healthy_idle += 1

    def record_failure(self, name: str) -> None:
        """A host failed; also valid for a pending host that could not be reached at all."""
        was_pending = self.states[name] is Status.PENDING
        self._finish(name, Status.FAILED, allow_pending=True)
        if was_pending and self._info[name].counts_healthy:
            # It was counted as healthy and idle; it is neither now.
            self._healthy_idle -= 1
            self._zone_of(name).healthy_idle -= 1

    def restore(self, name: str, state: Status) -> None:
        """Put a pending host in the state an interrupted deployment left it in (resume)."""
        if self.states[name] is not Status.PENDING:
            raise RuntimeError(f"{name} is already {self.states[name].value}")
        if state is Status.PENDING:
            return
        zone = self._zone_of(name)
        if self._info[name].counts_healthy:
            self._healthy_idle -= 1
            zone.healthy_idle -= 1
        if state is Status.SUCCEEDED:
            self._healthy_idle += 1
            zone.healthy_idle += 1
        self.states[name] = state

    def resume_zones(self) -> None:
        """After ``restore``: the zones an interrupted deployment finished are not baked again.

        The first zone with a host still to finish goes on where it was; if none of its hosts
        had started, the bake before it (which the interruption may have cut short) runs once.
        """
        if self.config.zonal is None:
            return
        for index, zone in enumerate(self._zones):
            states = [self.states[name] for name in zone.hosts]
            if all(state in TERMINAL for state in states):
                continue
            untouched = all(state is Status.PENDING for state in states)
            self._zone_index = index - 1 if untouched and index > 0 else index
            self._awaiting_next_zone = untouched and index > 0
            return
        self._zone_index = len(self._zones) - 1

    def stop(self, reason_code: str, message: str) -> None:
        """No new host starts (a stop request); pending hosts are skipped."""
        if self._error is None:
            self._error = (reason_code, message)
        self._skip_pending()

    def _finish(self, name: str, state: Status, *, allow_pending: bool = False) -> None:
        current = self.states[name]
        allowed = {Status.IN_PROGRESS} | ({Status.PENDING} if allow_pending else set())
        if current not in allowed:
            raise RuntimeError(f"{name} is {current.value}, it cannot become {state.value}")
        self.states[name] = state

    def _zone_of(self, name: str) -> _Zone:
        return next(zone for zone in self._zones if name in zone.hosts)

    def _skip_pending(self) -> None:
        for name, state in self.states.items():
            if state is Status.PENDING:
                self.states[name] = Status.SKIPPED

    def outcome(self) -> Outcome:
        """The deployment's result; meaningful once ``finished``."""
        if self._error is not None:
            return Outcome(False, *self._error)
        succeeded = self.count(Status.SUCCEEDED)
        needed = max(self.minimum, 1)
        if succeeded >= needed:
            failed = self.count(Status.FAILED)
            note = f", {failed} failed" if failed else ""
            return Outcome(True, None, f"{succeeded} of {len(self.targets)} hosts succeeded{note}")
        return Outcome(
            False,
            HEALTH_CONSTRAINTS,
            f"only {succeeded} host(s) succeeded; the deployment needs at least {needed}",
        )


@dataclass(frozen=True)
class Simulation:
    """What ``plan`` shows: the steps a deployment takes if every host succeeds."""

    order: list[str]
    minimum: int
    steps: list[list[str]]
    bakes: list[tuple[str, int]]
    max_concurrency: int
    success_needs: str
    outcome: Outcome


def simulate(config: DeploymentConfig, targets: Sequence[TargetInfo]) -> Simulation:
    """Run the scheduler in lock step with every host succeeding."""
    scheduler = Scheduler(config, targets)
    steps: list[list[str]] = []
    bakes: list[tuple[str, int]] = []
    while not scheduler.finished:
        started = scheduler.start_next()
        if started:
            steps.append(started)
            for name in started:
                scheduler.record_success(name)
        elif scheduler.awaiting_next_zone:
            bakes.append((scheduler.current_zone or "", scheduler.bake_seconds()))
            scheduler.begin_next_zone()
        elif not scheduler.in_flight:
            break
    return Simulation(
        order=scheduler.order,
        minimum=scheduler.minimum,
        steps=steps,
        bakes=bakes,
        max_concurrency=max((len(step) for step in steps), default=0),
        success_needs=success_rule(config, len(targets)),
        outcome=scheduler.outcome(),
    )
