"""Alarms stop a deployment: a real Prometheus scraping a metric that the new revision's hook
turns bad, and command alarms for the rules around unreadable alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from orchestrator.lab.fleet import Lab
from tests.integration.helpers import (
    event_started,
    fetch,
    rollout,
    start_orchestrator,
    wait_for_event,
    waiting_hook,
)
from tests.integration.prometheus import prometheus_scraping
from tests.integration.revisions import hello_web

GO = "/srv/go"
BAD = "app_errors 1"


def _with_metrics(tmp_path: Path, name: str, *, bad: bool) -> Path:
    """hello-web serving /metrics; the bad one's AfterInstall reports errors there and its
    ValidateService waits for GO on the host."""
    bundle = hello_web(tmp_path, name)
    (bundle / "www" / "metrics").write_text("app_errors 0\n")
    if bad:
        after = bundle / "scripts" / "after_install.sh"
        after.write_text(after.read_text() + f"echo '{BAD}' > /srv/hello-web/www/metrics\n")
        validate = bundle / "scripts" / "validate.sh"
        validate.write_text(validate.read_text() + waiting_hook(GO, 60))
    return bundle


def _group(lab: Lab, **settings: Any) -> None:
    document = yaml.safe_load(lab.inventory_path.read_text())
    document["applications"]["hello"]["deployment_groups"]["web"].update(settings)
    lab.inventory_path.write_text(yaml.safe_dump(document))


def test_a_prometheus_alarm_stops_the_deployment_and_rolls_it_back(
    fleet: Lab, tmp_path: Path
) -> None:
    good = rollout(fleet, _with_metrics(tmp_path, "good", bad=False))
    assert good.exit_code == 0, good.stderr
    with prometheus_scraping(fleet, tmp_path / "prometheus") as prometheus:
        prometheus.wait_for("count(app_errors == 0) == 5")
        alarm = {"type": "prometheus", "name": "app-errors", "url": prometheus.url}
        _group(
            fleet,
            alarms=[{**alarm, "query": "max(app_errors) > 0"}],
            alarm_poll_interval=0.5,
            auto_rollback={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
        )
        events = tmp_path / "events.ndjson"
        bad = _with_metrics(tmp_path, "bad", bad=True)
        process = start_orchestrator(
            ["-i", str(fleet.inventory_path), "rollout", "-a", "hello", "-g", "web",
             "-r", str(bad), "--events", str(events), "--output", "json"],
            tmp_path / "run",
        )  # fmt: skip
        try:
            wait_for_event(events, event_started("web-1", "ValidateService"))
            # web-1 serves the bad metric; Prometheus scrapes it, the alarm stops the deployment.
            prometheus.wait_for("max(app_errors) > 0")
            wait_for_event(events, lambda r: r["type"] == "Notice" and "stopping" in r["message"])
            fleet.host_path("web-1", GO).write_text("go\n")  # the running hook may finish
            exit_code = process.wait(timeout=120)
        finally:
            process.kill()
            process.wait()
    document = json.loads((tmp_path / "run" / "stdout").read_text())
    assert exit_code == 6, (tmp_path / "run" / "stderr").read_text()  # stopped
    assert document["status"] == "Stopped"
    assert document["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert "alarm 'app-errors' is active" in document["errorInformation"]["message"]
    touched = {r["host"] for r in _records(events) if r["type"] == "TargetStarted"}
    assert "web-1" in touched and "web-5" not in touched
    rollback = document["rollbackInfo"]
    assert rollback["rollbackStatus"] == "Succeeded"  # the alarm does not stop the rollback
    assert fetch(fleet.hosts[0].address, "/metrics") == "app_errors 0\n"


def _records(events: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def test_an_alarm_active_at_the_start_stops_the_deployment_before_any_host(
    small_lab: Lab, tmp_path: Path
) -> None:
    alarm = {"type": "command", "name": "pager", "command": "echo paging; exit 1"}
    _group(small_lab, alarms=[alarm])
    result = rollout(small_lab, hello_web(tmp_path))
    assert result.exit_code == 6, result.stderr
    assert result.document["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert (
        "alarm 'pager' is active: exit 1: paging" in result.document["errorInformation"]["message"]
    )
    assert not [r for r in result.events if r["type"] == "LifecycleEventStarted"]
    assert "rollbackInfo" not in result.document or not result.document["rollbackInfo"]


def test_an_unreadable_alarm_stops_unless_ignored(small_lab: Lab, tmp_path: Path) -> None:
    dead = {"type": "http", "name": "health", "url": "http://127.0.0.1:1/", "timeout": 2}
    _group(small_lab, alarms=[dead])
    stopped = rollout(small_lab, hello_web(tmp_path))
    assert stopped.exit_code == 6, stopped.stderr
    assert "alarm 'health' could not be read" in stopped.document["errorInformation"]["message"]
    _group(small_lab, ignore_poll_alarm_failure=True)
    deployed = rollout(small_lab, hello_web(tmp_path, "again"))
    assert deployed.exit_code == 0, deployed.stderr
    assert "alarm 'health' could not be read" in deployed.stderr  # said once, as a note
