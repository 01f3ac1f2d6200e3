"""The per-zone minimum on a real fleet in three zones (codedeploy-semantics §5: zonal configs):
zone after zone, never more of a zone at once than its minimum allows, and a zone whose minimum
cannot hold stops the deployment before the next zone is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.helpers import rollout
from tests.integration.revisions import failing_validate, hello_web

ZONES = {"web-1": "z1", "web-2": "z1", "web-3": "z2", "web-4": "z2", "web-5": "z3", "web-6": "z3"}


@pytest.fixture
def zoned(tmp_path: Path) -> Iterator[Lab]:
    """Six hosts, two in each of three zones; the group keeps one healthy host per zone."""
    lab = start_lab(tmp_path / "zoned", 6)
    try:
        document = yaml.safe_load(lab.inventory_path.read_text())
        for name, zone in ZONES.items():
            document["hosts"][name]["zone"] = zone
        document["deployment_configs"]["ZoneByZone"] = {
            "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 0},
            "zonal": {
                "first_zone_monitor_duration": 0,
                "monitor_duration": 0,
                "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 1},
            },
        }
        lab.inventory_path.write_text(yaml.safe_dump(document))
        yield lab
    finally:
        lab.down()


def _in_progress_by_zone(events: list[dict[str, object]]) -> Iterator[dict[str, int]]:
    """How many hosts of each zone are in progress after each event."""
    running: dict[str, int] = dict.fromkeys(set(ZONES.values()), 0)
    for record in events:
        if record["type"] == "TargetStarted":
            running[ZONES[str(record["host"])]] += 1
        elif record["type"] == "TargetFinished":
            running[ZONES[str(record["host"])]] -= 1
        yield dict(running)


def test_a_zone_is_deployed_one_host_at_a_time_and_zones_in_order(
    zoned: Lab, tmp_path: Path
) -> None:
    result = rollout(zoned, hello_web(tmp_path), group="web-zonal")
    assert result.exit_code == 0, result.stderr
    assert set(result.statuses().values()) == {"Succeeded"}
    assert max(max(counts.values()) for counts in _in_progress_by_zone(result.events)) == 1
    started = [ZONES[r["host"]] for r in result.events if r["type"] == "TargetStarted"]
    assert started == sorted(started)  # z1, z1, z2, z2, z3, z3: no zone before the last ended
    baked = [r["zone"] for r in result.events if r["type"] == "ZoneBaking"]
    assert baked == ["z1", "z2"]  # after each zone but the last


def test_a_zone_that_would_fall_below_its_minimum_stops_the_deployment(
    zoned: Lab, tmp_path: Path
) -> None:
    web_3 = zoned.hosts[2].address
    result = rollout(zoned, failing_validate(tmp_path, [web_3]), group="web-zonal")
    assert result.exit_code == 5, result.stderr  # the deployment failed
    error = result.document["errorInformation"]
    assert error["code"] == "HEALTH_CONSTRAINTS"
    assert "fewer than 1 healthy host(s) in zone z2" in error["message"]
    statuses = result.statuses()
    assert statuses["web-1"] == statuses["web-2"] == "Succeeded"
    assert statuses["web-3"] == "Failed"
    # web-4 would leave zone z2 without a healthy host; zone z3 is never reached.
    assert {statuses[name] for name in ("web-4", "web-5", "web-6")} <= {"Skipped", "Pending"}
    touched = {r["host"] for r in result.events if r["type"] == "TargetStarted"}
    assert touched == {"web-1", "web-2", "web-3"}
