"""Zero downtime behind a real HAProxy: a client sends requests through it while a rollout
replaces every host's hello-web, and not one request fails when the group names the load
balancer; without it, the same rollout drops requests (so the test can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.lab.fleet import Lab
from tests.integration.haproxy import Client, HAProxyProcess, haproxy_in_front
from tests.integration.helpers import rollout
from tests.integration.revisions import hello_web

WARM_UP = 4  # seconds the second revision's server takes to listen, as a real service may


def _running_behind_haproxy(fleet: Lab, tmp_path: Path) -> Path:
    """Deploy hello-web once so every host serves; return a second revision to roll out, whose
    server takes longer to come up than HAProxy's retries (3, a second apart) can hide."""
    first = rollout(fleet, hello_web(tmp_path, "first"))
    assert first.exit_code == 0, first.stderr
    second = hello_web(tmp_path, "second")
    (second / "www" / "index.html").write_text("<h1>hello-web, second</h1>\n")
    start = second / "scripts" / "start.sh"
    text = start.read_text()
    assert "setsid python3 -m http.server" in text
    start.write_text(
        text.replace(
            "setsid python3 -m http.server",
            f"setsid sh -c 'sleep {WARM_UP}; exec \"$@\"' sh python3 -m http.server",
        )
    )
    return second


def _use_load_balancer(fleet: Lab, proxy: HAProxyProcess, config: str) -> None:
    document = yaml.safe_load(fleet.inventory_path.read_text())
    group = document["applications"]["hello"]["deployment_groups"]["web"]
    group["deployment_config"] = config
    group["load_balancer"] = {
        "type": "haproxy",
        "runtime_api": proxy.runtime_api,
        "backend": "hello",
        "drain_timeout": 30,
        "health_timeout": 60,
    }
    fleet.inventory_path.write_text(yaml.safe_dump(document))


def test_without_the_load_balancer_a_rollout_drops_requests(fleet: Lab, tmp_path: Path) -> None:
    second = _running_behind_haproxy(fleet, tmp_path)
    with haproxy_in_front(fleet, tmp_path / "haproxy") as proxy, Client(proxy.url) as client:
        result = rollout(fleet, second)
    print(f"without the load balancer: {len(client.failures)} of {client.sent} requests failed")
    assert result.exit_code == 0, result.stderr
    assert client.sent > 50
    assert client.failures, "HAProxy alone hid the restarts: this test could not fail"


@pytest.mark.parametrize(
    "config", ["CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime"]
)
def test_behind_haproxy_not_one_request_fails(fleet: Lab, tmp_path: Path, config: str) -> None:
    second = _running_behind_haproxy(fleet, tmp_path)
    with haproxy_in_front(fleet, tmp_path / "haproxy") as proxy:
        _use_load_balancer(fleet, proxy, config)
        with Client(proxy.url) as client:
            result = rollout(fleet, second)
        assert set(proxy.statuses().values()) == {"UP"}
    print(f"{config} behind HAProxy: {len(client.failures)} of {client.sent} requests failed")
    assert result.exit_code == 0, result.stderr
    events = [e["lifecycleEventName"] for e in result.target("web-1")["lifecycleEvents"]]
    assert events[:3] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert events[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert client.sent > 50
    assert client.failures == [], f"{len(client.failures)} of {client.sent}: {client.failures[:5]}"


def _command_balancer(fleet: Lab, log: str, run_on: str, block: str = "") -> None:
    document = yaml.safe_load(fleet.inventory_path.read_text())
    group = document["applications"]["hello"]["deployment_groups"]["web"]
    group["load_balancer"] = {
        "type": "command",
        "block": block or f'printf \'block %s %s\\n\' "$1" "$2" >> {log}',
        "allow": f'printf \'allow %s %s\\n\' "$1" "$2" >> {log}',
        "run_on": run_on,
    }
    fleet.inventory_path.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("run_on", ["controller", "web-1"])
def test_a_command_balancer_gets_each_host_out_and_back_in_order(
    small_lab: Lab, tmp_path: Path, run_on: str
) -> None:
    log = (
        str(tmp_path / "balancer.log") if run_on == "controller" else "/srv/balancer.log"
    )  # the host's own
    _command_balancer(small_lab, log, run_on)
    result = rollout(small_lab, hello_web(tmp_path))
    assert result.exit_code == 0, result.stderr
    written = Path(log) if run_on == "controller" else small_lab.host_path("web-1", log)
    lines = written.read_text().splitlines()
    addresses = {host.name: host.address for host in small_lab.hosts}
    assert lines == [
        f"{what} {name} {addresses[name]}"
        for name in ("web-1", "web-2")
        for what in ("block", "allow")
    ]  # OneAtATime: each host out and back in before the next goes out
    assert result.event("web-2", "BlockTraffic")["status"] == "Succeeded"


def test_a_failing_block_command_fails_the_host_before_its_application_stops(
    small_lab: Lab, tmp_path: Path
) -> None:
    _command_balancer(small_lab, str(tmp_path / "log"), "controller", block="echo no way; exit 3")
    result = rollout(small_lab, hello_web(tmp_path))
    assert result.exit_code == 5, result.stderr
    blocked = result.event("web-1", "BlockTraffic")
    assert blocked["status"] == "Failed"
    assert "exited 3: no way" in blocked["diagnostics"]["message"]
    assert result.event("web-1", "ApplicationStop")["status"] == "Skipped"


def test_a_host_that_never_comes_up_fails_allow_traffic_and_is_named_even_with_q(
    small_lab: Lab, tmp_path: Path
) -> None:
    first = rollout(small_lab, hello_web(tmp_path, "first"))
    assert first.exit_code == 0, first.stderr
    broken = hello_web(tmp_path, "broken")  # its server never listens; nothing validates it
    (broken / "scripts" / "start.sh").write_text("#!/bin/sh\necho not starting\n")
    (broken / "scripts" / "validate.sh").write_text("#!/bin/sh\nexit 0\n")
    with haproxy_in_front(small_lab, tmp_path / "haproxy") as proxy:
        _use_load_balancer(small_lab, proxy, "CodeDeployDefault.OneAtATime")
        document = yaml.safe_load(small_lab.inventory_path.read_text())
        balancer = document["applications"]["hello"]["deployment_groups"]["web"]["load_balancer"]
        balancer["health_timeout"] = 3
        small_lab.inventory_path.write_text(yaml.safe_dump(document))
        result = rollout(small_lab, broken, "-q")
        statuses = proxy.statuses()
    assert result.exit_code == 5, result.stderr
    allowed = result.event("web-1", "AllowTraffic")
    assert allowed["status"] == "Failed"
    assert result.event("web-1", "AfterAllowTraffic")["status"] == "Skipped"
    assert statuses["web-1"] != "UP" and statuses["web-2"] == "UP"  # web-2 never went out
    assert (
        "note: left out of the load balancer (BlockTraffic ran, AllowTraffic did not "
        "succeed): web-1"
    ) in result.stderr
