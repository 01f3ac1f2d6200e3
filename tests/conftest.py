"""Shared fixtures: an isolated state and cache dir for every test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ORCHESTRATOR_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("ORCHESTRATOR_INVENTORY", raising=False)
    # A test run inside GitHub Actions: its rollouts write no annotations to the job's log nor
    # summaries to the job's page (the tests that want them set these themselves).
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
