from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.models.inventory import GROUP_ID_NAMESPACE, load_inventory, parse_inventory

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
defaults:
  user: deploy
  port: 2222
  ssh: {connect_timeout: 3}
hosts:
  web-1: {address: 10.0.1.11, tags: {role: web, tier: 1}}
  web-2:
    address: 10.0.1.12
    user: admin
    ssh: {known_hosts: /etc/ssh/known}
applications:
  shop:
    deployment_groups:
      web:
        tag_sets: [[{key: role, value: web}]]
      pinned:
        id: 5b8d7a5e-0000-4000-8000-000000000001
        hosts: [web-2]
        deployment_config: Custom
deployment_configs:
  Custom:
    minimum_healthy_hosts: {type: HOST_COUNT, value: 1}
"""


def test_example_inventory_is_valid() -> None:
    inventory = load_inventory(REPO / "inventory.example.yaml")
    assert inventory.model.hosts
    assert inventory.model.applications


def test_hosts_inherit_defaults_and_override_single_keys() -> None:
    inventory = parse_inventory(MINIMAL)
    one = inventory.resolve_host("web-1")
    two = inventory.resolve_host("web-2")
    assert (one.user, one.port, one.ssh.connect_timeout) == ("deploy", 2222, 3)
    assert one.ssh.known_hosts is None  # unset: ssh_config's, else OpenSSH's default
    assert (two.user, two.ssh.known_hosts, two.ssh.connect_timeout) == (
        "admin",
        "/etc/ssh/known",
        3,
    )
    assert one.tags == {"role": "web", "tier": "1"}  # YAML ints become tag strings
    assert one.max_revisions == 5
    assert one.deployment_root == "/opt/orchestrator/deployment-root"


def test_agent_forwarding_is_off_unless_a_host_or_the_defaults_ask() -> None:
    text = (
        "defaults: {ssh: {forward_agent: true}}\n"
        "hosts:\n  a: {}\n  b: {ssh: {forward_agent: false}}\n"
    )
    inventory = parse_inventory(text)
    assert inventory.resolve_host("a").ssh.forward_agent is True
    assert inventory.resolve_host("b").ssh.forward_agent is False
    assert parse_inventory("hosts:\n  a: {}\n").resolve_host("a").ssh.forward_agent is False


def test_what_the_inventory_leaves_out_is_left_to_ssh_config() -> None:
    inventory = parse_inventory("hosts:\n  web-1: {tags: {role: web}}\n")
    host = inventory.resolve_host("web-1")
    assert (host.address, host.port, host.user) == (None, None, None)
    assert (host.ssh.identity_files, host.ssh.known_hosts) == (None, None)
    assert host.destination == "web-1"


def test_group_id_is_uuid5_of_app_and_group_unless_configured() -> None:
    inventory = parse_inventory(MINIMAL)
    assert inventory.group_id("shop", "web") == str(uuid.uuid5(GROUP_ID_NAMESPACE, "shop/web"))
    assert inventory.group_id("shop", "web") == parse_inventory(MINIMAL).group_id("shop", "web")
    assert inventory.group_id("shop", "pinned") == "5b8d7a5e-0000-4000-8000-000000000001"


def test_config_chain_deployment_then_group_then_one_at_a_time() -> None:
    inventory = parse_inventory(MINIMAL)
    assert inventory.config_name_for("shop", "web") == "CodeDeployDefault.OneAtATime"
    assert inventory.config_name_for("shop", "pinned") == "Custom"
    assert inventory.config_name_for("shop", "pinned", "CodeDeployDefault.AllAtOnce").endswith(
        "AllAtOnce"
    )
    assert inventory.deployment_config("Custom").minimum_for(3) == 1


def test_unknown_application_and_group_name_what_is_known() -> None:
    inventory = parse_inventory(MINIMAL)
    with pytest.raises(InventoryError, match="unknown application 'shoe' \\(known: shop\\)"):
        inventory.group("shoe", "web")
    with pytest.raises(InventoryError, match="no deployment group 'db' \\(known: pinned, web\\)"):
        inventory.group("shop", "db")


def test_every_issue_is_reported_not_only_the_first() -> None:
    text = MINIMAL.replace("role: web, tier: 1}", "role: web}, colour: red").replace(
        "hosts: [web-2]", "hosts: [web-7]"
    )
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    messages = [str(issue) for issue in caught.value.issues]
    assert any("unknown key 'colour'" in m for m in messages)


def test_cross_references_are_checked_after_the_schema() -> None:
    text = MINIMAL.replace("hosts: [web-2]", "hosts: [web-7]").replace(
        "deployment_config: Custom", "deployment_config: Missing"
    )
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    messages = [str(issue) for issue in caught.value.issues]
    assert (
        "inv.yaml:19: applications.shop.deployment_groups.pinned.hosts[0]: unknown host 'web-7'"
        in messages
    )
    assert any("inv.yaml:20:" in m and "unknown deployment config 'Missing'" in m for m in messages)


def test_empty_and_missing_files() -> None:
    with pytest.raises(InventoryError, match="the file is empty"):
        parse_inventory("# nothing\n", "empty.yaml")
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory(Path("/nonexistent/inventory.yaml"))
