"""What the controller reads is bounded: file sizes, YAML aliases, what a host sends back.

The alias bombs, recursive aliases and deep nesting of the bad-input corpus (test_bad_input.py)
cover the refusals; here the sizes, the aliases that stay allowed and the host's replies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.hostproto import framing
from orchestrator.hostproto.replies import parse_probe
from orchestrator.models.appspec import MAX_APPSPEC_BYTES
from orchestrator.models.inventory import MAX_INVENTORY_BYTES, parse_inventory
from orchestrator.transport.base import ReplyOverflow, ScriptCall
from tests.unit.host_programs import run_one

SHARED_TAG_SETS = """\
hosts:
  web-1: {address: 127.0.0.1, tags: &web {role: web, env: prod}}
  web-2: {address: 127.0.0.2, tags: *web}
applications:
  shop:
    deployment_groups:
      a: {tag_sets: &sets [[{key: role, value: web}], [{key: env, value: prod}]]}
      b: {tag_sets: *sets, deployment_config: CodeDeployDefault.AllAtOnce}
"""


def test_aliases_that_share_parts_of_an_inventory_stay_allowed() -> None:
    inventory = parse_inventory(SHARED_TAG_SETS)
    assert inventory.resolve_host("web-2").tags == {"role": "web", "env": "prod"}
    assert inventory.model.applications["shop"].deployment_groups["b"].tag_sets


def test_an_inventory_over_the_limit_exits_3_unread(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    with path.open("wb") as handle:  # comments: valid YAML however long
        handle.write(b"#" * MAX_INVENTORY_BYTES + b"\nhosts: {}\n")
    result = CliRunner().invoke(cli, ["-i", str(path), "validate"])
    assert result.exit_code == 3, result.output
    assert f"{path}: bigger than 8 MiB, the most orchestrator reads" in result.stderr


def test_an_appspec_over_the_limit_exits_3(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    padding = b"#" * MAX_APPSPEC_BYTES
    (bundle / "appspec.yml").write_bytes(b"version: 0.0\nos: linux\n" + padding + b"\n")
    result = CliRunner().invoke(cli, ["validate", "-r", str(bundle)])
    assert result.exit_code == 3, result.output
    assert f"{bundle / 'appspec.yml'}: bigger than 1 MiB" in result.stderr


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_the_probe_sends_no_more_of_the_previous_appspec_than_asked(
    tmp_path: Path, shell: str
) -> None:
    root = tmp_path / "root"
    last = root / "g-1" / "d-1"
    (last / "deployment-archive").mkdir(parents=True)
    (root / "deployment-instructions").mkdir()
    (root / "deployment-instructions" / "g-1_last_successful_install").write_text(f"{last}\n")
    (last / "deployment-archive" / "appspec.yml").write_bytes(b"x" * 200_000)
    call = ScriptCall("probe", (str(root), "g-1", "d-2", "70001"))
    probe = parse_probe(run_one(shell, call))
    assert probe.old_appspec == "x" * 70_001


def test_a_reply_that_outgrows_the_limit_is_refused_not_buffered() -> None:
    """A host sending without end (tampered with): the reader stops at the limit."""
    sent = 0

    async def endless(size: int) -> bytes:
        nonlocal sent
        if sent > 64 * framing.READ_CHUNK:  # the test's own bound: the reader must stop first
            return b""
        sent += size
        return b"y" * size

    async def read_one() -> None:
        await framing.RunnerReplies(endless, "5ec7e7", limit=4 * framing.READ_CHUNK).next()

    with pytest.raises(ReplyOverflow):
        asyncio.run(read_one())
    assert sent <= 6 * framing.READ_CHUNK
