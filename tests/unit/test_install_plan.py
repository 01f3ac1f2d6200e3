"""The Install instructions computed on the controller (codedeploy-semantics §2.2-§2.4)."""

from __future__ import annotations

import pytest

from orchestrator.errors import AppSpecError
from orchestrator.hostproto import install_stream
from orchestrator.install_plan import build_install_plan
from orchestrator.models.appspec import parse_appspec
from orchestrator.revision import ManifestEntry

ENTRIES = (
    ManifestEntry("appspec.yml", "file", 0o644),
    ManifestEntry("app", "dir", 0o755),
    ManifestEntry("app/bin", "dir", 0o755),
    ManifestEntry("app/bin/run.sh", "file", 0o755),
    ManifestEntry("app/index.html", "file", 0o644),
    ManifestEntry("app/latest", "symlink", 0o777, target="index.html"),
    ManifestEntry("conf.ini", "file", 0o644),
)


def plan(files: str, permissions: str = "", behavior: str = "DISALLOW"):  # type: ignore[no-untyped-def]
    text = f"version: 0.0\nos: linux\nfiles:\n{files}" + (
        f"permissions:\n{permissions}" if permissions else ""
    )
    return build_install_plan(parse_appspec(text), ENTRIES, behavior)


def steps(p) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(s.kind, s.destination, s.source) for s in p.instructions]


def test_directory_source_copies_its_contents_and_creates_ancestors() -> None:
    assert steps(plan("  - {source: app, destination: /srv/web}\n")) == [
        ("mkdir", "/srv", ""),
        ("mkdir", "/srv/web", ""),
        ("mkdir", "/srv/web/bin", "app/bin"),
        ("copy", "/srv/web/bin/run.sh", "app/bin/run.sh"),
        ("copy", "/srv/web/index.html", "app/index.html"),
        ("copy", "/srv/web/latest", "app/latest"),
    ]


def test_file_source_lands_in_the_destination_directory() -> None:
    assert steps(plan("  - {source: conf.ini, destination: /etc/app}\n"))[-1] == (
        "copy",
        "/etc/app/conf.ini",
        "conf.ini",
    )


def test_whole_bundle_includes_the_appspec() -> None:
    copies = [s[1] for s in steps(plan("  - {source: /, destination: /opt/x}\n")) if s[0] == "copy"]
    assert "/opt/x/appspec.yml" in copies and "/opt/x/app/index.html" in copies


def test_two_mappings_onto_one_file_are_refused() -> None:
    with pytest.raises(AppSpecError, match="installed by more than one files mapping"):
        plan(
            "  - {source: conf.ini, destination: /etc/app}\n  - {source: conf.ini, destination: /etc/app}\n"
        )


def test_render_is_the_same_for_every_host() -> None:
    """What the previous install owns the host reads from its cleanup file: not in the stream."""
    rendered = install_stream.rendered(plan("  - {source: conf.ini, destination: /etc/app}\n"))
    lines = rendered.splitlines()
    assert lines[0].startswith("J\t{") and lines[1] == "B\tDISALLOW"
    assert "F\t2\tconf.ini\t/etc/app/conf.ini" in lines


def test_permissions_reach_only_installed_paths_below_the_object() -> None:
    p = plan(
        "  - {source: app, destination: /srv/web}\n",
        '  - {object: /srv/web, pattern: "*.html", type: [file], mode: "600"}\n'
        '  - {object: /srv, type: [directory], mode: "700", owner: www}\n',
    )
    applied = {path: (rule.mode, rule.owner) for _, rule, path in p.permissions}
    assert applied == {
        "/srv/web/index.html": ("600", None),  # an immediate child matching the glob
        "/srv/web": ("700", "www"),  # below /srv, created by this install (if it is)
        "/srv/web/bin": ("700", "www"),
    }  # /srv itself is the object: never changed


def test_double_star_reaches_every_descendant_and_except_filters_children() -> None:
    p = plan(
        "  - {source: app, destination: /srv/web}\n",
        '  - {object: /srv/web, type: [file], mode: "640", except: ["*.html"]}\n',
    )
    assert sorted(path for _, _, path in p.permissions) == [
        "/srv/web/bin/run.sh",
        "/srv/web/latest",
    ]


def test_a_file_object_takes_no_pattern_and_overlaps_are_refused() -> None:
    with pytest.raises(AppSpecError, match="pattern and except apply only to directories"):
        plan(
            "  - {source: conf.ini, destination: /etc/app}\n",
            '  - {object: /etc/app/conf.ini, pattern: "*.ini", mode: "600"}\n',
        )
    with pytest.raises(AppSpecError, match="specified more than once"):
        plan(
            "  - {source: app, destination: /srv/web}\n",
            '  - {object: /srv/web, mode: "600"}\n  - {object: /srv/web/bin, mode: "700"}\n',
        )


def test_audit_json_lists_every_command() -> None:
    import json

    p = plan(
        "  - {source: conf.ini, destination: /etc/app}\n",
        '  - {object: /etc/app/conf.ini, mode: "600", owner: app}\n',
    )
    kinds = [c["type"] for c in json.loads(install_stream.audit_json(p))["instructions"]]
    assert kinds == ["mkdir", "mkdir", "copy", "chmod", "chown"]


def test_a_big_plan_streams_the_same_document_and_lines() -> None:
    """Written a command at a time, across many chunks: the same JSON as one json.dumps of the
    whole list, and a line per step after it."""
    import json

    names = [f'app/d{i // 10}/f{i} "q" é.js' for i in range(10_000)]
    entries = (ENTRIES[0], *(ManifestEntry(n, "file", 0o644) for n in names))
    text = (
        "version: 0.0\nos: linux\nfiles:\n  - {source: app, destination: /srv/web}\n"
        'permissions:\n  - {object: /srv/web, pattern: "**", type: [file], mode: "640", '
        "owner: app, acls: ['u:app:r']}\n"
    )
    p = build_install_plan(parse_appspec(text), entries, "RETAIN")
    expected: list[dict[str, object]] = [
        {"type": "mkdir", "directory": "/srv"},
        {"type": "mkdir", "directory": "/srv/web"},
    ]
    expected += [{"type": "copy", "source": n, "destination": "/srv/web/" + n[4:]} for n in names]
    for n in names:
        path = "/srv/web/" + n[4:]
        expected.append({"type": "chmod", "mode": "640", "file": path})
        expected.append({"type": "setfacl", "acl": ["u:app:r"], "file": path})
        expected.append({"type": "chown", "owner": "app", "group": None, "file": path})
    document = json.dumps({"instructions": expected}, separators=(",", ":"))
    assert install_stream.audit_json(p) == document
    lines = install_stream.rendered(p).split("\n")
    assert lines[0] == f"J\t{document}" and lines[1] == "B\tRETAIN" and lines[-1] == ""
    assert lines[4] == f"F\t2\t{names[0]}\t/srv/web/{names[0][4:]}"
    assert len(lines) == 2 + 2 + 10_000 + 10_000 + 1
    assert install_stream.encoded(p) is install_stream.encoded(p)  # made once, for every host
