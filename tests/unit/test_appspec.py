from __future__ import annotations

import pytest

from orchestrator.errors import AppSpecError
from orchestrator.models.appspec import DEFAULT_HOOK_TIMEOUT, HOOK_EVENTS, parse_appspec
from tests.paths import HELLO_WEB


def test_hello_web_appspec_is_valid_and_has_all_five_application_hooks() -> None:
    spec = parse_appspec((HELLO_WEB / "appspec.yml").read_text()).model
    for event in (
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ):
        assert spec.hooks.for_event(event), event
    assert spec.files[0].destination == "/srv/hello-web/www"


def test_defaults_and_normalisation() -> None:
    spec = parse_appspec(
        """
version: 0.0
os: linux
files:
  - {source: /, destination: /srv/app/}
  - {source: ./web/, destination: /srv/web}
permissions:
  - {object: /srv/app, mode: 644, except: ["*.sh"]}
  - {object: /srv/app/bin, mode: "4755"}
hooks:
  AfterInstall:
    - location: ./scripts/a.sh
      runas: app
  ValidateService:
"""
    ).model
    assert spec.files[0].source == ""  # the whole bundle
    assert spec.files[0].destination == "/srv/app"
    assert spec.files[1].source == "web"
    assert spec.permissions[0].mode == "644"
    assert spec.permissions[0].except_ == ["*.sh"]
    assert spec.permissions[0].type == ["file", "directory"]
    assert spec.permissions[1].mode == "4755"
    hook = spec.hooks.for_event("AfterInstall")[0]
    assert (hook.location, hook.timeout, hook.runas) == (
        "scripts/a.sh",
        DEFAULT_HOOK_TIMEOUT,
        "app",
    )
    assert spec.hooks.for_event("ValidateService") == []  # a null event is ignored


def test_quoted_version_string_is_accepted() -> None:
    assert parse_appspec('version: "0.0"\nos: linux\n').model.version == "0.0"


@pytest.mark.parametrize("event", HOOK_EVENTS)
def test_every_hook_event_name_is_accepted(event: str) -> None:
    spec = parse_appspec(
        f"version: 0.0\nos: linux\nhooks:\n  {event}:\n    - location: s.sh\n"
    ).model
    assert spec.hooks.for_event(event)[0].location == "s.sh"


def test_short_mode_is_left_padded() -> None:
    spec = parse_appspec('version: 0.0\nos: linux\npermissions:\n  - {object: /a, mode: "7"}\n')
    assert spec.model.permissions[0].mode == "007"


def test_empty_appspec_is_refused() -> None:
    with pytest.raises(AppSpecError, match="empty"):
        parse_appspec("")
