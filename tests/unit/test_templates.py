"""Per-host templates rendered on the controller: what they see, and how they fail."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import ConfigError, TemplateRenderError
from orchestrator.models.appspec import parse_appspec
from orchestrator.models.hosts import HostSpec, ResolvedSsh
from orchestrator.templates import (
    MAX_RENDERED_BYTES,
    DeploymentContext,
    GroupContext,
    TemplateRenderer,
    context_for,
)

GROUP = GroupContext(application="shop", name="web", id="g-1")
DEPLOYMENT = DeploymentContext(id="d-ABC", revision="ab" * 32, description="release 7")


def _host(name: str = "web-1", variables: dict[str, Any] | None = None) -> HostSpec:
    return HostSpec(
        name=name,
        address="127.0.0.7",
        port=2201,
        user="deploy",
        deployment_root="/opt/orchestrator/deployment-root",
        ssh=ResolvedSsh(None, None, "strict", None, 5.0, 15.0),
        become="none",
        max_revisions=5,
        zone="eu-1a",
        tags={"role": "web"},
        vars=dict(variables or {}),
    )


def _render(text: str, host: HostSpec | None = None) -> str:
    host = host or _host(variables={"http_port": 8080})
    renderer = TemplateRenderer({"app.conf.j2": text})
    return renderer.render("app.conf.j2", host.name, context_for(host, GROUP, DEPLOYMENT)).decode()


def test_a_template_sees_the_host_its_vars_the_group_and_the_deployment() -> None:
    text = (
        "listen {{ host.address }}:{{ http_port }}\n"
        "name {{ host.name }} zone {{ host.zone }} role {{ host.tags.role }}\n"
        "group {{ group.application }}/{{ group.name }} deployment {{ deployment.id }}\n"
        "port again {{ vars.http_port }}\n"
    )
    assert _render(text) == (
        "listen 127.0.0.7:8080\n"
        "name web-1 zone eu-1a role web\n"
        "group shop/web deployment d-ABC\n"
        "port again 8080\n"
    )


def test_a_host_var_named_like_a_context_object_is_only_under_vars() -> None:
    host = _host(variables={"host": "shadow", "port": 1})
    assert _render("{{ host.name }} {{ vars.host }} {{ port }}", host) == "web-1 shadow 1"


def test_an_undefined_variable_names_the_template_its_line_and_the_host() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        _render("first\nsecond\nport = {{ htp_port }}\n", _host("web-9"))
    (issue,) = caught.value.issues
    assert (issue.file, issue.line) == ("app.conf.j2", 3)
    assert "host web-9" in issue.message and "htp_port" in issue.message
    assert isinstance(caught.value, ConfigError)  # exit 3, as every bad input


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateRenderError, match="unsafe"):
        _render("{{ ''.__class__.__mro__ }}")


def test_a_syntax_error_is_found_without_a_host() -> None:
    renderer = TemplateRenderer({"ok.j2": "{{ a }}", "bad.j2": "line\n{% if %}\n"})
    (issue,) = renderer.check_syntax()
    assert (issue.file, issue.line) == ("bad.j2", 2)


def test_a_runaway_template_is_cut_off() -> None:
    text = "{% for i in range(100000) %}" + "x" * 100 + "{% endfor %}"
    with pytest.raises(TemplateRenderError, match="more than"):
        _render(text)
    assert MAX_RENDERED_BYTES < 100000 * 100


@pytest.mark.parametrize(
    "text",
    [
        # Nested loops: 10^10 chunks, stopped as the output passes the cap, not at the end.
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        '{{ "x" * 10000000000 }}',  # one step that would take 10 GB
        "{{ 10000000000 * [1] }}",
        "{{ 7 ** 100000000 }}",  # a number of 280 million bits, minutes of CPU
    ],
)
def test_a_runaway_is_stopped_before_it_takes_the_memory(text: str) -> None:
    with pytest.raises(TemplateRenderError, match="more than"):
        _render(text)


def test_bounded_operators_still_work() -> None:
    assert _render('{{ "-" * 3 }} {{ 2 ** 10 }} {{ 3 * 4 }} {{ [0] * 2 }}') == "--- 1024 12 [0, 0]"


def test_trailing_newline_is_kept() -> None:
    assert _render("a\n") == "a\n"


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.integers()))
def test_every_var_renders_as_itself(variables: dict[str, int]) -> None:
    host = _host(variables=variables)
    for key, value in variables.items():
        assert _render("{{ vars['" + key + "'] }}", host) == str(value)


def test_the_appspec_takes_templates_with_a_bundle_source_and_an_absolute_destination() -> None:
    spec = parse_appspec(
        "version: 0.0\nos: linux\ntemplates:\n"
        "  - {source: config/app.conf.j2, destination: /etc/app/app.conf}\n"
    )
    (mapping,) = spec.model.templates
    assert (mapping.source, mapping.destination) == ("config/app.conf.j2", "/etc/app/app.conf")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{source: ../x.j2, destination: /etc/x}", "outside the bundle"),
        ("{source: x.j2, destination: etc/x}", "absolute file path"),
        ("{source: x.j2, destination: /}", "absolute file path"),
        ("{source: x.j2, destination: /etc/x, mode: 644}", "mode"),
    ],
)
def test_a_bad_template_entry_names_its_line(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_appspec(f"version: 0.0\nos: linux\ntemplates:\n  - {entry}\n", "appspec.yml")
    text = str(caught.value)
    assert "appspec.yml:4" in text and message in text


def _plan_for(appspec_text: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    from orchestrator.install_plan import build_install_plan
    from orchestrator.revision import ManifestEntry

    entries = (
        ManifestEntry("config", "dir", 0o755),
        ManifestEntry("config/app.conf.j2", "file", 0o644, 10),
        ManifestEntry("www", "dir", 0o755),
        ManifestEntry("www/app.conf", "file", 0o644, 10),
    )
    plan = build_install_plan(parse_appspec(appspec_text), entries, "DISALLOW")
    return (
        [(i.kind, i.source, i.destination) for i in plan.instructions],
        [path for _, _, path in plan.permissions],
    )


def test_a_template_installs_like_a_file_from_the_hosts_rendering() -> None:
    instructions, permissioned = _plan_for(
        "version: 0.0\nos: linux\n"
        "templates: [{source: config/app.conf.j2, destination: /etc/app/app.conf}]\n"
        "permissions: [{object: /etc/app, pattern: '*.conf', mode: '600', type: [file]}]\n"
    )
    assert ("copy", "../rendered/0/app.conf", "/etc/app/app.conf") in instructions
    assert ("mkdir", "", "/etc/app") in instructions
    assert permissioned == ["/etc/app/app.conf"]


def test_a_template_and_a_file_onto_one_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="more than one files mapping"):
        _plan_for(
            "version: 0.0\nos: linux\n"
            "files: [{source: www, destination: /etc/app}]\n"
            "templates: [{source: config/app.conf.j2, destination: /etc/app/app.conf}]\n"
        )


def test_a_template_missing_from_the_bundle_names_its_line() -> None:
    with pytest.raises(ConfigError, match=r"appspec.yml:3: templates\[0\].source: .*not a regular"):
        _plan_for(
            "version: 0.0\nos: linux\n"
            "templates: [{source: config/nope.j2, destination: /etc/app/app.conf}]\n"
        )
