"""A host's files cannot take the controller down: the previous appspec each host sends back is
bounded in size and in aliases, and a bad one fails that host's ApplicationStop only."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from tests.integration.helpers import rollout
from tests.integration.revisions import script_bundle

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")


def _alias_bomb(levels: int) -> str:
    lines = ["version: 0.0", "os: linux", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_a_tampered_previous_appspec_fails_only_its_host(small_lab: Lab, tmp_path: Path) -> None:
    bundle = script_bundle(tmp_path, "stop", {"ApplicationStop": "echo stopping\n"})
    first = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert first.exit_code == 0, first.stderr
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    old = f"{small_lab.deployment_root('web-1')}/{gid}/{first.document['deploymentId']}"
    appspec = small_lab.host_path("web-1", f"{old}/deployment-archive/appspec.yml")

    # Six levels: a million nodes (before the bound: seconds of the controller's CPU and
    # hundreds of MB per host; nine levels would not have finished).
    appspec.write_text(_alias_bomb(6))
    bombed = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert bombed.exit_code == 4, bombed.stderr
    assert bombed.statuses() == {"web-1": "Failed", "web-2": "Succeeded"}
    message = bombed.event("web-1", "ApplicationStop")["diagnostics"]["message"]
    assert "previous appspec:" in message and "aliases expand the document" in message
    assert f"{old}/deployment-archive/appspec.yml:" in message

    # Bigger than an appspec may be: the host sends one byte more than the limit, no more.
    appspec.write_bytes(b"version: 0.0\nos: linux\n" + b"#" * (64 << 20) + b"\n")
    oversized = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert oversized.exit_code == 4, oversized.stderr
    message = oversized.event("web-1", "ApplicationStop")["diagnostics"]["message"]
    assert "bigger than 1 MiB" in message

    past = rollout(small_lab, bundle, *ALL_AT_ONCE, "--ignore-application-stop-failures")
    assert past.exit_code == 0, past.stderr


def test_a_host_reply_beyond_the_limit_fails_that_host_unread(
    small_lab: Lab, tmp_path: Path
) -> None:
    """web-1's lock holder file grew to 20 MiB (tampered with): the lock's reply is refused at
    16 MiB, web-1 fails with that reason and the rollout goes on with web-2."""
    bundle = script_bundle(tmp_path, "ok", {"AfterInstall": "echo ok\n"})
    gid = load_inventory(small_lab.inventory_path).group_id("hello", "web")
    lock = small_lab.host_path("web-1", f"{small_lab.deployment_root('web-1')}/locks/{gid}")
    lock.mkdir(parents=True)
    (lock / "deployment").write_text("d-SOMEONE\n")
    (lock / "heartbeat").write_text(f"{int(time.time()) + 3600}\n")  # held, not stale
    (lock / "holder").write_bytes(b"h" * (20 << 20))
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.statuses() == {"web-1": "Failed", "web-2": "Succeeded"}, result.stderr
    message = result.target("web-1")["lifecycleEvents"][0]["diagnostics"]["message"]
    assert "the host sent a reply of more than 16 MiB" in message
