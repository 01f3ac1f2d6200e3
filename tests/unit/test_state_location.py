"""``--state``: one parser for where the history and the state dir (locks, known_hosts) are."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
from click.testing import CliRunner

from orchestrator.cli.context import CliContext
from orchestrator.cli.main import cli
from orchestrator.models.inventory import parse_inventory
from orchestrator.state.location import state_location
from orchestrator.state.locks import LocalLock
from orchestrator.state.sqlite import store_path
from tests.paths import HELLO_WEB

INVENTORY = (
    "hosts:\n  web-1: {address: 127.0.0.1, port: 1, tags: {role: web}}\n"
    "applications:\n  hello:\n    deployment_groups:\n      web: {tag_sets: [[{key: role}]]}\n"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.parametrize(
    ("state", "history", "directory"),
    [
        ("~/x", "~/x/history.sqlite", "~/x"),
        ("~/x/h.sqlite", "~/x/h.sqlite", "~/x"),
        ("~/x/h.sqlite3", "~/x/h.sqlite3", "~/x"),
        ("~/x/h.db", "~/x/h.db", "~/x"),
        ("sqlite://~/x/h.db", "~/x/h.db", "~/x"),
        ("sqlite:///abs/h.db", "/abs/h.db", "/abs"),
        ("sqlite:///abs/history", "/abs/history", "/abs"),  # a URL names the file itself
        ("/abs/dir", "/abs/dir/history.sqlite", "/abs/dir"),
        ("/abs/state.d", "/abs/state.d/history.sqlite", "/abs/state.d"),  # a directory, too
        ("rel/dir", "{cwd}/rel/dir/history.sqlite", "{cwd}/rel/dir"),
        ("rel/h.db", "{cwd}/rel/h.db", "{cwd}/rel"),
    ],
)
def test_every_form_of_state_puts_the_history_and_the_locks_together(
    state: str,
    history: str,
    directory: str,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    def expected(text: str) -> Path:
        return Path(text.replace("~", str(home)).replace("{cwd}", str(tmp_path)))

    location = state_location(state)
    assert (location.history, location.directory) == (expected(history), expected(directory))
    assert location.history.is_absolute() and location.directory.is_absolute()
    # The history store and the CLI's state dir (locks, known_hosts) read it the same way.
    assert store_path(state) == location.history
    context = CliContext(Path("inventory.yaml"), False, state)
    assert context.state_dir == location.directory
    assert context.accept_new_file == location.directory / "known_hosts"


def test_no_state_is_the_user_state_dir() -> None:
    location = state_location(None)
    assert location.directory == Path(platformdirs.user_state_dir("orchestrator"))
    assert location.history == location.directory / "history.sqlite"
    assert state_location("") == location


def test_two_rollouts_from_different_directories_with_the_same_state_exclude_each_other(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rollout holds the group's local lock, started in one directory with ``--state ~/x``;
    a second, started in another directory with the same ``--state``, finds it held (exit 7),
    and both record into ~/x."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    group_id = parse_inventory(INVENTORY).group_id("hello", "web")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.delenv("ORCHESTRATOR_STATE")
    monkeypatch.chdir(first)
    held = LocalLock(CliContext(inventory, True, "~/x").state_dir, group_id, "hello/web")
    held.acquire("d-FIRST00001")
    try:
        monkeypatch.chdir(second)
        args = ["--state", "~/x", "-i", str(inventory), "rollout", "-a", "hello", "-g", "web"]
        result = CliRunner().invoke(cli, [*args, "-r", str(HELLO_WEB)])
    finally:
        held.release()
    assert result.exit_code == 7, result.output
    assert "d-FIRST00001" in result.stderr
    assert (home / "x" / "locks" / f"{group_id}.lock").is_file()
    assert not (first / "~").exists() and not (second / "~").exists()


@pytest.mark.parametrize("state", ["~nosuchuser-orchestrator/x", "sqlite://"])
def test_a_state_no_command_could_use_is_a_usage_error(state: str) -> None:
    result = CliRunner().invoke(cli, ["--state", state, "history"])
    assert result.exit_code == 2, result.output
    assert "--state" in result.output


@pytest.mark.parametrize("command", [["history"], ["status"], ["logs", "d-X"], ["stop", "d-X"]])
def test_a_state_of_an_unknown_scheme_is_a_usage_error_that_creates_nothing(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--state mysql://...`` once made ./mysql:/u@host/db/history.sqlite and exit 0: now a
    usage error naming the scheme and the supported ones (never the password), from the option
    or the env."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--state", "mysql://u:hush@host/db", *command])
    assert result.exit_code == 2, result.output
    assert "scheme 'mysql'" in result.stderr and "supported: sqlite, postgresql" in result.stderr
    assert "hush" not in result.output
    monkeypatch.setenv("ORCHESTRATOR_STATE", "foo://bar")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2, result.output
    assert "scheme 'foo'" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://deployer:s3cret@db.internal:5433/orch",
         "postgresql://deployer:***@db.internal:5433/orch"),
        ("postgres://deployer@db/orch", "postgres://deployer@db/orch"),
        ("postgresql://u:p%40ss@h/d?sslmode=require&password=s3cret",
         "postgresql://u:***@h/d?sslmode=require&password=***"),
        ("POSTGRESQL://u:a@b@h/d", "postgresql://u:***@h/d"),  # an unescaped @ in the password
    ],
)  # fmt: skip
def test_a_postgresql_url_is_a_server_shown_without_its_password(
    url: str, shown: str, home: Path
) -> None:
    """The URL is kept whole for libpq (its scheme in lower case); every message gets ``display``. The state dir (for
    known_hosts) is then the user state dir: a server holds no local files."""
    location = state_location(url)
    scheme, rest = url.split("://", 1)
    as_libpq_reads_it = f"{scheme.lower()}://{rest}"  # libpq knows only lower-case schemes
    assert (location.scheme, location.url, location.display) == (
        "postgresql",
        as_libpq_reads_it,
        shown,
    )
    assert location.directory == Path(platformdirs.user_state_dir("orchestrator"))
    assert not location.directory.exists()  # parsing creates nothing
