"""The minimum-healthy scheduler: every worked example of codedeploy-semantics §5.1, and properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.models.deployment_config import (
    ALL_AT_ONCE,
    HALF_AT_A_TIME,
    ONE_AT_A_TIME,
    PREDEFINED,
    DeploymentConfig,
    MinimumHealthyHosts,
    ZonalSettings,
)
from orchestrator.models.results import Status
from orchestrator.planning import (
    HEALTH_CONSTRAINTS,
    HEALTH_CONSTRAINTS_INVALID,
    NO_INSTANCES,
    Health,
    RevisionState,
    Scheduler,
    TargetInfo,
    simulate,
)


def hosts(n: int, **kwargs: object) -> list[TargetInfo]:
    return [TargetInfo(f"h-{i}", **kwargs) for i in range(1, n + 1)]  # type: ignore[arg-type]


def count(value: int) -> DeploymentConfig:
    return DeploymentConfig(f"count-{value}", MinimumHealthyHosts(type="HOST_COUNT", value=value))


def percent(value: int) -> DeploymentConfig:
    return DeploymentConfig(f"pct-{value}", MinimumHealthyHosts(type="FLEET_PERCENT", value=value))


def drive(
    config: DeploymentConfig,
    targets: list[TargetInfo],
    failing: set[str] = frozenset(),  # type: ignore[assignment]
    pick: Callable[[list[str]], str] = lambda flight: flight[0],
) -> tuple[Scheduler, int]:
    """Run a deployment where hosts in ``failing`` fail; returns the scheduler and peak concurrency."""
    scheduler = Scheduler(config, targets)
    peak = 0
    for _ in range(10 * len(targets) + 10):  # bounded: every round finishes a host or a zone
        if scheduler.finished:
            break
        scheduler.start_next()
        flight = scheduler.in_flight
        peak = max(peak, len(flight))
        if not flight:
            if scheduler.awaiting_next_zone:
                scheduler.begin_next_zone()
                continue
            break
        host = pick(flight)
        (scheduler.record_failure if host in failing else scheduler.record_success)(host)
    assert scheduler.finished
    return scheduler, peak


# -- §5.1 worked examples ---------------------------------------------------------------------------


def test_nine_hosts_host_count_6_goes_three_at_a_time_and_needs_six() -> None:
    sim = simulate(count(6), hosts(9))
    assert (sim.minimum, sim.max_concurrency) == (6, 3)
    scheduler, _ = drive(count(6), hosts(9), {"h-7", "h-8", "h-9"})
    assert scheduler.outcome().succeeded  # 6 successes are enough
    # Three early failures leave exactly 6 healthy: no other host may start.
    scheduler, _ = drive(count(6), hosts(9), {"h-1", "h-2", "h-3"})
    assert scheduler.outcome().error_code == HEALTH_CONSTRAINTS
    assert scheduler.count(Status.SKIPPED) == 6


def test_nine_hosts_fleet_percent_40_means_four_and_five_at_a_time() -> None:
    sim = simulate(percent(40), hosts(9))
    assert (sim.minimum, sim.max_concurrency) == (4, 5)  # ceil(3.6) = 4
    assert "at least 4 of 9" in sim.success_needs


def test_ten_hosts_95_percent_fails_immediately_and_deploys_nothing() -> None:
    scheduler = Scheduler(percent(95), hosts(10))
    assert scheduler.start_next() == []
    assert scheduler.finished
    assert scheduler.outcome().error_code == HEALTH_CONSTRAINTS_INVALID
    assert scheduler.count(Status.SKIPPED) == 10


@pytest.mark.parametrize("config", [percent(85), count(9), PREDEFINED[ONE_AT_A_TIME]], ids=str)
def test_ten_hosts_minimum_nine_is_one_at_a_time_and_fails_on_first_failure(
    config: DeploymentConfig,
) -> None:
    assert simulate(config, hosts(10)).max_concurrency == 1
    scheduler, _ = drive(config, hosts(10), {"h-4"})
    outcome = scheduler.outcome()
    assert (outcome.succeeded, outcome.error_code) == (False, HEALTH_CONSTRAINTS)
    assert scheduler.count(Status.SUCCEEDED) == 3
    assert scheduler.count(Status.SKIPPED) == 6


@pytest.mark.parametrize("config", [percent(85), count(9), PREDEFINED[ONE_AT_A_TIME]], ids=str)
def test_ten_hosts_minimum_nine_tolerates_a_failure_on_the_last_instance(
    config: DeploymentConfig,
) -> None:
    scheduler, _ = drive(config, hosts(10), {"h-10"})
    assert scheduler.outcome().succeeded
    assert scheduler.count(Status.FAILED) == 1


def test_ten_hosts_minimum_eight_two_at_a_time_second_failure_fails_unless_last() -> None:
    assert simulate(count(8), hosts(10)).max_concurrency == 2
    scheduler, _ = drive(count(8), hosts(10), {"h-2", "h-5"})
    assert scheduler.outcome().error_code == HEALTH_CONSTRAINTS
    scheduler, _ = drive(count(8), hosts(10), {"h-2", "h-10"})
    assert scheduler.outcome().succeeded
    assert scheduler.count(Status.SUCCEEDED) == 8


def test_ten_hosts_minimum_zero_all_at_once_one_success_is_enough() -> None:
    scheduler, peak = drive(count(0), hosts(10), {f"h-{i}" for i in range(2, 11)})
    assert peak == 10
    assert scheduler.outcome().succeeded


def test_never_succeeds_with_zero_successes() -> None:
    scheduler, _ = drive(count(0), hosts(3), {"h-1", "h-2", "h-3"})
    assert scheduler.outcome().error_code == HEALTH_CONSTRAINTS


# -- predefined configs ----------------------------------------------------------------------------


def test_predefined_configs_concurrency_and_success_rules() -> None:
    half = simulate(PREDEFINED[HALF_AT_A_TIME], hosts(9))
    assert (half.minimum, half.max_concurrency) == (5, 4)
    assert "at least 5 of 9" in half.success_needs
    every = simulate(PREDEFINED[ALL_AT_ONCE], hosts(9))
    assert (every.minimum, every.max_concurrency) == (0, 9)
    one = simulate(PREDEFINED[ONE_AT_A_TIME], hosts(1))
    assert (one.minimum, one.max_concurrency) == (0, 1)
    scheduler, _ = drive(PREDEFINED[ONE_AT_A_TIME], hosts(1), {"h-1"})
    assert not scheduler.outcome().succeeded  # the only instance must succeed


def test_half_at_a_time_with_three_of_five_failing_stops_and_skips_the_rest() -> None:
    scheduler, peak = drive(PREDEFINED[HALF_AT_A_TIME], hosts(5), {"h-1", "h-2", "h-3"})
    assert peak == 2
    assert scheduler.outcome().error_code == HEALTH_CONSTRAINTS
    assert scheduler.states == {
        "h-1": Status.FAILED,
        "h-2": Status.FAILED,
        "h-3": Status.SKIPPED,
        "h-4": Status.SKIPPED,
        "h-5": Status.SKIPPED,
    }


def test_no_hosts_is_no_instances() -> None:
    scheduler = Scheduler(PREDEFINED[ONE_AT_A_TIME], [])
    assert scheduler.finished
    assert scheduler.outcome().error_code == NO_INSTANCES


# -- order and health ------------------------------------------------------------------------------


def test_order_is_health_class_then_natural_name() -> None:
    targets = [
        TargetInfo("c-1", Health.HEALTHY, RevisionState.CURRENT),
        TargetInfo("o-10", Health.HEALTHY, RevisionState.OLD),
        TargetInfo("o-9", Health.HEALTHY, RevisionState.OLD),
        TargetInfo("u-1", Health.HEALTHY, RevisionState.UNKNOWN),
        TargetInfo("z-bad", Health.UNHEALTHY, RevisionState.OLD),
        TargetInfo("a-new", Health.NEW),
    ]
    assert Scheduler(PREDEFINED[ALL_AT_ONCE], targets).order == [
        "a-new",
        "z-bad",
        "u-1",
        "o-9",
        "o-10",
        "c-1",
    ]


def test_unhealthy_hosts_start_at_once_without_lowering_the_healthy_count() -> None:
    targets = [
        *hosts(4, health=Health.HEALTHY),
        TargetInfo("sick-1", Health.UNHEALTHY),
        TargetInfo("sick-2", Health.UNHEALTHY),
    ]
    scheduler = Scheduler(PREDEFINED[ONE_AT_A_TIME], targets)  # m = 5 of 6: no slack at all
    assert scheduler.start_next() == ["sick-1", "sick-2"]


def test_new_hosts_count_as_healthy_so_a_first_deployment_keeps_the_pace() -> None:
    assert simulate(PREDEFINED[ONE_AT_A_TIME], hosts(4)).steps == [
        ["h-1"],
        ["h-2"],
        ["h-3"],
        ["h-4"],
    ]


def test_an_unreachable_host_is_a_failed_target() -> None:
    scheduler = Scheduler(PREDEFINED[HALF_AT_A_TIME], hosts(4))  # m = 2
    scheduler.record_failure("h-4")  # never started
    assert scheduler.start_next() == ["h-1"]  # healthy idle is 3 now, so one at a time


def test_stop_skips_pending_hosts() -> None:
    scheduler = Scheduler(PREDEFINED[ONE_AT_A_TIME], hosts(3))
    scheduler.start_next()
    scheduler.stop("MANUAL_STOP", "stopped by the operator")
    scheduler.record_success("h-1")
    assert scheduler.finished
    assert scheduler.outcome().error_code == "MANUAL_STOP"
    assert scheduler.count(Status.SKIPPED) == 2


# -- zones -----------------------------------------------------------------------------------------


def zonal(per_zone: int, global_min: int = 0) -> DeploymentConfig:
    return DeploymentConfig(
        "zonal",
        MinimumHealthyHosts(type="HOST_COUNT", value=global_min),
        ZonalSettings(60, 30, MinimumHealthyHosts(type="HOST_COUNT", value=per_zone)),
    )


def test_zonal_goes_zone_by_zone_with_bakes() -> None:
    targets = [
        TargetInfo("a-1", zone="z-b"),
        TargetInfo("a-2", zone="z-a"),
        TargetInfo("a-3", zone="z-b"),
        TargetInfo("a-4", zone=None),
    ]
    sim = simulate(zonal(0), targets)
    assert sim.steps == [["a-2"], ["a-1", "a-3"], ["a-4"]]
    assert sim.bakes == [("z-a", 60), ("z-b", 30)]


def test_zonal_per_zone_minimum_limits_concurrency_in_the_zone() -> None:
    targets = [TargetInfo(f"h-{i}", zone="z") for i in range(1, 5)]
    assert simulate(zonal(per_zone=2), targets).max_concurrency == 2
    assert simulate(zonal(per_zone=2, global_min=3), targets).max_concurrency == 1


def test_begin_next_zone_refuses_while_the_zone_runs() -> None:
    scheduler = Scheduler(zonal(0), [TargetInfo("h-1", zone="a"), TargetInfo("h-2", zone="b")])
    scheduler.start_next()
    with pytest.raises(RuntimeError):
        scheduler.begin_next_zone()


# -- properties ------------------------------------------------------------------------------------

configs = st.one_of(
    st.just(PREDEFINED[ONE_AT_A_TIME]),
    st.just(PREDEFINED[HALF_AT_A_TIME]),
    st.just(PREDEFINED[ALL_AT_ONCE]),
    st.integers(0, 12).map(count),
    st.integers(0, 99).map(percent),
)
fleets = st.lists(
    st.builds(
        TargetInfo,
        st.from_regex(r"h-[0-9]{1,2}", fullmatch=True),
        st.sampled_from(list(Health)),
        st.sampled_from(list(RevisionState)),
    ),
    max_size=12,
    unique_by=lambda t: t.name,
)


@given(configs, fleets, st.data())
def test_the_minimum_is_kept_and_the_outcome_follows_the_rules(
    config: DeploymentConfig, targets: list[TargetInfo], data: st.DataObject
) -> None:
    failing = set(
        data.draw(st.lists(st.sampled_from([t.name for t in targets]) if targets else st.nothing()))
    )
    scheduler = Scheduler(config, targets)
    info = {t.name: t for t in targets}
    m = scheduler.minimum
    for _ in range(3 * len(targets) + 3):
        started = scheduler.start_next()
        if any(info[name].counts_healthy for name in started):
            idle_healthy = sum(
                1
                for name, state in scheduler.states.items()
                if (state is Status.PENDING and info[name].counts_healthy)
                or state is Status.SUCCEEDED
            )
            assert idle_healthy >= m, "a healthy host started below the minimum"
        flight = scheduler.in_flight
        if not flight:
            break
        host = data.draw(st.sampled_from(flight))
        (scheduler.record_failure if host in failing else scheduler.record_success)(host)
    assert scheduler.finished
    outcome = scheduler.outcome()
    succeeded = scheduler.count(Status.SUCCEEDED)
    if outcome.succeeded:
        assert succeeded >= max(m, 1)
        assert scheduler.count(Status.SKIPPED) == 0
    if not failing & set(info) and targets and (config.one_at_a_time or m < len(targets)):
        assert outcome.succeeded


@pytest.mark.parametrize(
    ("finished", "running", "bake", "next_hosts"),
    [
        # zone a done, b untouched: the bake after a (maybe cut short) once more, then b.
        (["a-1", "a-2"], [], 60, ["b-1", "b-2"]),
        # a and b done: only the bake after b, never a's again.
        (["a-1", "a-2", "b-1", "b-2"], [], 30, ["c-1"]),
        # b was under way: it goes on at once, no bake.
        (["a-1", "a-2", "b-1"], ["b-2"], None, []),
    ],
)
def test_a_resumed_zonal_deployment_does_not_bake_finished_zones_again(
    finished: list[str], running: list[str], bake: int | None, next_hosts: list[str]
) -> None:
    targets = [TargetInfo(n, zone=n[0]) for n in ("a-1", "a-2", "b-1", "b-2", "c-1")]
    scheduler = Scheduler(zonal(0), targets)
    for name in finished:
        scheduler.restore(name, Status.SUCCEEDED)
    for name in running:
        scheduler.restore(name, Status.IN_PROGRESS)
    scheduler.resume_zones()
    if bake is None:
        assert not scheduler.awaiting_next_zone and scheduler.current_zone == "b"
        assert scheduler.start_next() == []  # b-2 is running; nothing else in b
        scheduler.record_success("b-2")
        assert scheduler.start_next() == [] and scheduler.awaiting_next_zone
        assert scheduler.bake_seconds() == 30
        return
    assert scheduler.awaiting_next_zone and scheduler.bake_seconds() == bake
    scheduler.begin_next_zone()
    assert scheduler.start_next() == next_hosts
