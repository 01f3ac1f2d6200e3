"""Tag-set selection with CodeDeploy's semantics, by table and by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.models.groups import DeploymentGroup, TagFilter
from orchestrator.selection import filter_matches, natural_key, select_hosts, sort_hosts

HOSTS = {
    "web-1": {"role": "web", "env": "prod"},
    "web-2": {"role": "web", "env": "staging"},
    "web-10": {"role": "web", "env": "prod", "canary": "yes"},
    "db-1": {"role": "db", "env": "prod"},
    "bare": {},
}


def group(tag_sets: list[list[dict[str, str]]], hosts: list[str] | None = None) -> DeploymentGroup:
    return DeploymentGroup.model_validate({"tag_sets": tag_sets, "hosts": hosts or []})


def test_key_and_value() -> None:
    assert select_hosts(group([[{"key": "role", "value": "web"}]]), HOSTS) == [
        "web-1",
        "web-2",
        "web-10",
    ]


def test_key_only_matches_any_value() -> None:
    assert select_hosts(group([[{"key": "canary"}]]), HOSTS) == ["web-10"]


def test_value_only_matches_any_key() -> None:
    assert select_hosts(group([[{"value": "yes"}]]), HOSTS) == ["web-10"]
    assert select_hosts(group([[{"value": "prod"}]]), HOSTS) == ["db-1", "web-1", "web-10"]


def test_or_within_a_set_and_across_sets() -> None:
    sets = [
        [{"key": "role", "value": "web"}],
        [{"key": "env", "value": "prod"}, {"value": "staging"}],
    ]
    assert select_hosts(group(sets), HOSTS) == ["web-1", "web-2", "web-10"]
    narrower = [[{"key": "role", "value": "web"}], [{"key": "env", "value": "staging"}]]
    assert select_hosts(group(narrower), HOSTS) == ["web-2"]


def test_explicit_hosts_are_unioned_and_no_sets_select_nothing_by_tag() -> None:
    assert select_hosts(group([], ["bare"]), HOSTS) == ["bare"]
    assert select_hosts(group([[{"key": "role", "value": "db"}]], ["bare", "db-1"]), HOSTS) == [
        "bare",
        "db-1",
    ]
    assert select_hosts(group([]), HOSTS) == []


def test_natural_order() -> None:
    assert sort_hosts(["web-10", "web-2", "web-1", "db-3"]) == ["db-3", "web-1", "web-2", "web-10"]
    # "²" is a digit to str.isdigit but no number to int(): a name, not a crash.
    assert natural_key("\u00b2") == ((1, "\u00b2"),)


# -- properties ------------------------------------------------------------------------------------

names = st.text(alphabet="abcxyz", min_size=1, max_size=3)
tags = st.dictionaries(names, names, max_size=3)
inventories = st.dictionaries(st.from_regex(r"h-[0-9]{1,3}", fullmatch=True), tags, max_size=12)
filters = st.one_of(
    st.builds(lambda k: TagFilter(key=k), names),
    st.builds(lambda v: TagFilter(value=v), names),
    st.builds(lambda k, v: TagFilter(key=k, value=v), names, names),
)
tag_sets = st.lists(st.lists(filters, min_size=1, max_size=4), max_size=3)


def _reference(sets: list[list[TagFilter]], host_tags: dict[str, str]) -> bool:
    """The definition, written independently: every set has a filter that some tag satisfies."""
    if not sets:
        return False
    for tag_set in sets:
        hit = False
        for f in tag_set:
            for key, value in host_tags.items():
                if (f.key is None or f.key == key) and (f.value is None or f.value == value):
                    hit = True
        if not hit:
            return False
    return True


@given(inventories, tag_sets)
def test_selection_matches_the_definition(
    hosts: dict[str, dict[str, str]], sets: list[list[TagFilter]]
) -> None:
    chosen = select_hosts(DeploymentGroup(tag_sets=sets), hosts)
    assert set(chosen) == {name for name, t in hosts.items() if _reference(sets, t)}
    assert chosen == sorted(chosen, key=natural_key)


@given(inventories, tag_sets, st.lists(filters, min_size=1, max_size=3))
def test_another_set_never_widens(
    hosts: dict[str, dict[str, str]], sets: list[list[TagFilter]], extra: list[TagFilter]
) -> None:
    if not sets or len(sets) == 3:
        return
    before = set(select_hosts(DeploymentGroup(tag_sets=sets), hosts))
    after = set(select_hosts(DeploymentGroup(tag_sets=[*sets, extra]), hosts))
    assert after <= before


@given(inventories, tag_sets, filters)
def test_another_filter_in_a_set_never_narrows(
    hosts: dict[str, dict[str, str]], sets: list[list[TagFilter]], extra: TagFilter
) -> None:
    if not sets:
        return
    before = set(select_hosts(DeploymentGroup(tag_sets=sets), hosts))
    widened = [[*sets[0], extra], *sets[1:]]
    assert before <= set(select_hosts(DeploymentGroup(tag_sets=widened), hosts))


@given(inventories, tag_sets, st.lists(names, max_size=4))
def test_explicit_hosts_are_a_union(
    hosts: dict[str, dict[str, str]], sets: list[list[TagFilter]], explicit: list[str]
) -> None:
    present = [n for n in explicit if n in hosts]
    with_hosts = set(select_hosts(DeploymentGroup(tag_sets=sets, hosts=present), hosts))
    assert with_hosts == set(select_hosts(DeploymentGroup(tag_sets=sets), hosts)) | set(present)


@given(tags, filters)
def test_filter_kinds(host_tags: dict[str, str], f: TagFilter) -> None:
    if f.kind == "KEY_ONLY":
        assert filter_matches(f, host_tags) == (f.key in host_tags)
    elif f.kind == "VALUE_ONLY":
        assert filter_matches(f, host_tags) == (f.value in host_tags.values())
    else:
        assert filter_matches(f, host_tags) == (host_tags.get(f.key or "") == f.value)
