"""Which hosts a deployment group selects (codedeploy-semantics §6.1). Pure code.

A filter is KEY_ONLY (``{key}``), VALUE_ONLY (``{value}``) or KEY_AND_VALUE. A host matches a tag
set when it matches any filter in it (OR), and the group when it matches every set (AND). Hosts
named explicitly are added to the tag match. The result is ordered by natural host name, so that
``web-2`` comes before ``web-10`` and every run sees the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from orchestrator.models.groups import DeploymentGroup, TagFilter
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import Inventory

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: ``web-2`` < ``web-10``."""
    return tuple(
        (0, int(part)) if part.isdecimal() else (1, part) for part in _DIGITS.split(name) if part
    )


def filter_matches(tag_filter: TagFilter, tags: Mapping[str, str]) -> bool:
    if tag_filter.key is None:
        return tag_filter.value in tags.values()
    if tag_filter.key not in tags:
        return False
    return tag_filter.value is None or tags[tag_filter.key] == tag_filter.value


def tags_match(tag_sets: Sequence[Sequence[TagFilter]], tags: Mapping[str, str]) -> bool:
    """AND across sets, OR within a set. No sets selects nothing by tag."""
    if not tag_sets:
        return False
    return all(any(filter_matches(f, tags) for f in tag_set) for tag_set in tag_sets)


def select_hosts(group: DeploymentGroup, host_tags: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Names of the hosts in ``group``: the tag match unioned with the explicit names."""
    chosen: set[str] = {
        name for name, tags in host_tags.items() if tags_match(group.tag_sets, tags)
    }
    chosen.update(name for name in group.hosts if name in host_tags)
    return sort_hosts(chosen)


def sort_hosts(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def selected_hosts(inventory: Inventory, application: str, group: str) -> list[HostSpec]:
    """The group's hosts, resolved (their SSH settings with the inventory's defaults)."""
    tags = {name: dict(entry.tags) for name, entry in inventory.model.hosts.items()}
    names = select_hosts(inventory.group(application, group), tags)
    return [inventory.resolve_host(name) for name in names]
