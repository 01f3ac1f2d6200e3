"""Any text either is refused at load or travels in the Install instructions field for field.

The instructions are tab-separated lines: an accepted destination, object, owner, group, acl or
context can never add a field or a line (DESIGN: pure code gets property tests).
"""

from __future__ import annotations

import posixpath

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.errors import AppSpecError
from orchestrator.hostproto import install_stream
from orchestrator.install_plan import build_install_plan
from orchestrator.models.appspec import parse_appspec
from orchestrator.revision import ManifestEntry

ENTRIES = (ManifestEntry("app", "dir", 0o755), ManifestEntry("app/f", "file", 0o644, 1))
# Every character, the troublesome ones often.
TEXT = st.text(
    st.one_of(st.sampled_from("\t\n\r\0\x85\u2028\\'\"$`:- *[]ü"), st.characters()), min_size=1
)


@settings(max_examples=200, deadline=None)
@given(destination=TEXT, owner=TEXT, group=TEXT, acl=TEXT, context=TEXT)
def test_accepted_text_keeps_its_field_and_line(
    destination: str, owner: str, group: str, acl: str, context: str
) -> None:
    # The values as YAML reads them back (it folds a NEL, \x85, to a space, as YAML 1.1 says).
    destination, owner, group, acl, context = yaml.safe_load(
        yaml.safe_dump([destination, owner, group, acl, context], allow_unicode=True)
    )
    path = "/d/" + destination
    assume(posixpath.normpath(path) != "/")  # permissions on "/" itself: not what this tests
    appspec = {
        "version": 0.0,
        "os": "linux",
        "files": [{"source": "app", "destination": path}],
        "permissions": [
            {
                "object": path,
                "owner": owner,
                "group": group,
                "acls": [acl],
                "context": {"type": context},
                "mode": "640",
            }
        ],
    }
    try:
        spec = parse_appspec(yaml.safe_dump(appspec, allow_unicode=True))
    except AppSpecError:
        return
    lines = install_stream.rendered(build_install_plan(spec, ENTRIES, "OVERWRITE")).split("\n")
    assert lines[-1] == ""
    fields = [line.split("\t") for line in lines[:-1]]
    copies = [f for f in fields if f[0] == "F"]
    assert copies == [["F", copies[0][1], "app/f", posixpath.join(posixpath.normpath(path), "f")]]
    rules = [f for f in fields if f[0] == "P"]
    assert [rule[2:7] for rule in rules] == [["640", owner, group, acl, f":{context}:"]]
