"""The command line without hosts: help, exit codes, validate, hosts, plan and the stubs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import orchestrator
from orchestrator.cli.main import cli
from orchestrator.models.inventory import load_inventory
from tests.paths import HELLO_WEB, REPO

EXAMPLE = str(REPO / "inventory.example.yaml")


def subcommand(group: click.Group, name: str) -> click.Command:
    """A subcommand as click finds it (the top level loads each command's module lazily)."""
    command = group.get_command(click.Context(group), name)
    assert command is not None, name
    return command


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name in group.list_commands(click.Context(group)):
        found.append((*prefix, name))
        command = subcommand(group, name)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, (*prefix, name)))
    return found


def test_the_commands_are_all_there() -> None:
    assert {command[0] for command in all_commands(cli)} == {
        "validate", "hosts", "plan", "rollout", "rollback", "sync",
        "stop", "lock", "status", "history", "logs", "lab", "state",
    }  # fmt: skip
    assert CliRunner().invoke(cli, ["no-such-command"]).exit_code == 2


@pytest.mark.parametrize("command", all_commands(cli), ids=" ".join)
def test_every_command_has_help_for_every_option(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    target: click.Command = cli
    for name in command:
        assert isinstance(target, click.Group)
        target = subcommand(target, name)
    for param in target.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{' '.join(command)} {param.opts[0]} has no help"


@pytest.mark.parametrize("width", [50, 80, 120])
def test_help_lists_the_commands_as_click_would(width: int) -> None:
    """The top level's command list, written from COMMANDS' summaries, is what click writes
    from the commands themselves (each one's help truncated to fit)."""
    context = click.Context(cli)
    ours, clicks = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    cli.format_commands(context, ours)
    click.Group.format_commands(cli, context, clicks)
    assert ours.getvalue() == clicks.getvalue()


def test_top_level_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for code in ("0 ", "3 ", "4 ", "5 ", "6 ", "7 ", "130"):
        assert f"  {code}" in result.output


def test_rollback_without_history_fails_with_a_reason() -> None:
    result = CliRunner().invoke(cli, ["-i", EXAMPLE, "rollback", "-a", "shop", "-g", "web-prod"])
    assert result.exit_code == 5
    assert "no successful deployment to roll back to" in result.stderr


def test_stop_of_an_unknown_deployment_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["stop", "d-NOPE"])
    assert result.exit_code == 2
    assert "no deployment d-NOPE" in result.stderr


def test_status_with_an_empty_history_exits_2() -> None:
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert "no deployment" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(cli, ["plan", "-a", "shop"]).exit_code == 2
    assert CliRunner().invoke(cli, ["no-such-command"]).exit_code == 2


def test_validate_ok() -> None:
    result = CliRunner().invoke(cli, ["-i", EXAMPLE, "validate", "-r", str(HELLO_WEB)])
    assert result.exit_code == 0, result.output
    assert "5 hosts" in result.stderr and "sha256" in result.stderr


def test_inventory_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_INVENTORY", EXAMPLE)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 0


def test_missing_inventory_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 3
    assert "inventory.yaml: file not found" in result.stderr


def test_hosts_lists_the_selection_in_order() -> None:
    result = CliRunner().invoke(
        cli, ["-i", EXAMPLE, "hosts", "-a", "shop", "-g", "web-prod", "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["host"] for row in rows] == ["web-1", "web-2", "web-3", "web-4", "web-9"]
    assert rows[4]["port"] == 2222


def test_hosts_unknown_group_exits_3() -> None:
    result = CliRunner().invoke(cli, ["-i", EXAMPLE, "hosts", "-a", "shop", "-g", "nope"])
    assert result.exit_code == 3
    assert "no deployment group 'nope'" in result.stderr


def test_plan_text_shows_order_concurrency_and_success_rule() -> None:
    result = CliRunner().invoke(
        cli, ["-i", EXAMPLE, "plan", "-a", "shop", "-g", "web-prod", "-r", str(HELLO_WEB)]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "CodeDeployDefault.HalfAtATime" in out
    assert "Hosts in order (5): web-1, web-2, web-3, web-4, web-9" in out
    assert "at most 2 at a time" in out and "at least 3 of 5 hosts" in out
    for name in (
        "CodeDeployDefault.OneAtATime",
        "CodeDeployDefault.AllAtOnce",
        "ThreeQuarters",
        "ZoneByZone",
    ):
        assert name in out
    assert "scripts/validate.sh" in out


def test_plan_json_document() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "-i",
            EXAMPLE,
            "plan",
            "-a",
            "shop",
            "-g",
            "web-prod",
            "-r",
            str(HELLO_WEB),
            "--deployment-config",
            "CodeDeployDefault.AllAtOnce",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["plan"]["deploymentConfig"] == "CodeDeployDefault.AllAtOnce"
    assert document["plan"]["steps"] == [["web-1", "web-2", "web-3", "web-4", "web-9"]]
    assert len(document["revision"]["sha256"]) == 64
    assert {c["deploymentConfig"] for c in document["configs"]} >= {"CodeDeployDefault.OneAtATime"}


def test_plan_that_cannot_succeed_exits_5(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "hosts:\n  a: {address: 127.0.0.1, tags: {r: x}}\n"
        "applications:\n  app:\n    deployment_groups:\n"
        "      one: {tag_sets: [[{key: r}]], deployment_config: CodeDeployDefault.HalfAtATime}\n"
        "      none: {tag_sets: [[{key: missing}]]}\n"
    )
    invalid = CliRunner().invoke(
        cli, ["-i", str(inventory), "plan", "-a", "app", "-g", "one", "-r", str(HELLO_WEB)]
    )
    assert invalid.exit_code == 5
    assert "HEALTH_CONSTRAINTS_INVALID" in invalid.stderr
    empty = CliRunner().invoke(
        cli, ["-i", str(inventory), "plan", "-a", "app", "-g", "none", "-r", str(HELLO_WEB)]
    )
    assert empty.exit_code == 5
    assert "NO_INSTANCES" in empty.stderr


def test_public_api_exports_exist() -> None:
    for name in orchestrator.__all__:
        assert hasattr(orchestrator, name), name


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        # pydantic and the models take about 0.3 s to import, asyncssh 0.2 s: the commands that
        # only read the history need neither (an empty history: status and logs exit 2)
        ([["status"], ["history"], ["logs", "d-NOSUCHONE"]], "[0, 2, 0, 2] []"),
        # the command list comes from a table: no command's module is loaded
        ([["--help"]], "[0, 0] []"),
        # a command's help loads its module (pydantic too), which connects to nothing
        ([["rollout", "--help"], ["plan", "--help"]], "[0, 0, 0] ['pydantic']"),
    ],
)
def test_commands_import_only_what_they_use(
    tmp_path: Path, commands: list[list[str]], expected: str
) -> None:
    probe = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from orchestrator.cli.main import cli\n"
        "commands = json.loads(sys.argv[2])\n"
        # the probe itself fails if a heavy module comes with the top level
        "codes = [int(any(m in sys.modules for m in ('asyncssh', 'pydantic')))]\n"
        "codes += [CliRunner().invoke(cli, ['--state', sys.argv[1], *args]).exit_code\n"
        "          for args in commands]\n"
        "print(codes, sorted(m for m in ('asyncssh', 'pydantic') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), json.dumps(commands)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert done.stdout.strip() == expected, done.stderr


class _Connecting(Exception):
    """Raised where a command makes its SSH transport: nothing is contacted."""


GROUP_ARGS = ["-a", "shop", "-g", "web-prod"]


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("api.settings", ["rollout", *GROUP_ARGS, "-r", str(HELLO_WEB)]),
        ("api.hosts", ["hosts", *GROUP_ARGS, "--check"]),
        ("cli.control", ["lock", "status", *GROUP_ARGS]),
    ],
)
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--max-handshakes", "7"], {}, 7),
        ([], {"ORCHESTRATOR_MAX_HANDSHAKES": "9"}, 9),
        ([], {}, None),
    ],
)
def test_max_handshakes_reaches_the_transport_of_every_command_that_connects(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    command: list[str],
    args: list[str],
    env: dict[str, str],
    expected: int | None,
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_MAX_HANDSHAKES", raising=False)
    asked: list[int | None] = []

    def transport(
        max_handshakes: int | None = None,
        accept_new_file: Path | None = None,
        *,
        compress: bool = False,  # a deployment through a bundle store: SSH compression
    ) -> None:
        asked.append(max_handshakes)
        raise _Connecting

    monkeypatch.setattr(f"orchestrator.{module}.ssh_transport", transport)
    everywhere = ["-i", EXAMPLE, "--state", str(tmp_path), *args]
    result = CliRunner().invoke(cli, [*everywhere, *command], env=env)
    assert isinstance(result.exception, _Connecting), result.output
    assert asked == [expected]


def test_max_handshakes_is_checked_and_its_help_names_the_default() -> None:
    from orchestrator.cli.context import ssh_transport
    from orchestrator.transport.ssh_limits import SshLimits

    result = CliRunner().invoke(cli, ["--max-handshakes", "0", "history"])
    assert result.exit_code == 2
    assert "--max-handshakes" in result.stderr
    help_text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert f"default {SshLimits().max_handshakes})" in help_text
    assert ssh_transport(5)().limits.max_handshakes == 5
    assert ssh_transport()().limits == SshLimits()


@pytest.mark.parametrize("group", ["web-prod", "web-behind-lb", "web-zonal"])
def test_every_group_of_the_example_inventory_can_succeed(group: str) -> None:
    """The example is what people copy: each of its groups plans (exit 0, not 5 "cannot
    succeed"), the zonal one with its per-zone minimum included."""
    groups = load_inventory(REPO / "inventory.example.yaml").model.applications["shop"]
    assert set(groups.deployment_groups) == {
        "web-prod",
        "web-behind-lb",
        "web-zonal",
    }  # a new one joins the list
    result = CliRunner().invoke(
        cli, ["-i", EXAMPLE, "plan", "-a", "shop", "-g", group, "-r", str(HELLO_WEB)]
    )
    assert result.exit_code == 0, result.output
    assert "cannot succeed" not in result.output
