"""Every file of the bad-input corpus makes `validate` exit 3 with a message naming its line.

Each corpus file says what the message must contain (`# expect: ...` on its first line) and marks
the line the message must name with `#<-`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli

CORPUS = Path(__file__).resolve().parents[1] / "bad-input"


def _expectation(path: Path) -> tuple[str, int]:
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    expected = lines[0].split("# expect: ", 1)[1]
    line = next(n for n, text in enumerate(lines, 1) if text.rstrip().endswith("#<-"))
    return expected, line


@pytest.mark.parametrize(
    "path", sorted((CORPUS / "inventory").glob("*.yaml")), ids=lambda p: p.stem
)
def test_bad_inventory_exits_3_naming_the_line(path: Path) -> None:
    expected, line = _expectation(path)
    result = CliRunner().invoke(cli, ["-i", str(path), "validate"])
    assert result.exit_code == 3, result.output
    assert f"{path}:{line}:" in result.stderr
    assert expected in result.stderr


def _bundle(tmp_path: Path, appspec: Path) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "scripts").mkdir(parents=True)
    (bundle / "app").mkdir()
    (bundle / "app" / "index.html").write_text("hello\n")
    script = bundle / "scripts" / "ok.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    shutil.copy(appspec, bundle / "appspec.yml")
    return bundle


@pytest.mark.parametrize("path", sorted((CORPUS / "appspec").glob("*.yml")), ids=lambda p: p.stem)
def test_bad_appspec_exits_3_naming_the_line(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, line = _expectation(path)
    bundle = _bundle(tmp_path, path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "-r", str(bundle)])
    assert result.exit_code == 3, result.output
    assert f"{bundle / 'appspec.yml'}:{line}:" in result.stderr
    assert expected in result.stderr


def test_corpus_is_not_empty() -> None:
    assert len(list((CORPUS / "inventory").glob("*.yaml"))) >= 15
    assert len(list((CORPUS / "appspec").glob("*.yml"))) >= 15
