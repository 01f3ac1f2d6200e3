"""YAML loading that remembers where every key came from.

pydantic reports errors by key path; operators need a file and a line. ``load_yaml`` keeps a map
from key path to line number, and ``validate_document`` turns a pydantic ``ValidationError`` into
``ConfigIssue`` objects such as ``inventory.yaml:14: applications.shop...tag_sets[0][1]: unknown
key 'vale'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import ConfigError, ConfigIssue

KeyPath = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

MIB = 1024 * 1024
# Aliases are allowed (an inventory may share a tag set between groups) but bounded: each alias
# stands for a copy of what it names, which pydantic and the line map walk whole, so nested
# aliases in a few hundred bytes made hundreds of millions of nodes (a 357-byte appspec took
# 2.2 s and 290 MB at six levels, ten times that per level more). What aliases add may not exceed
# the nodes written out, or this floor when the document is small.
ALIAS_NODES_FLOOR = 10_000
# No format nests this deep (the inventory's free-form `vars` least of all); the walks of the
# line map and of pydantic recurse once per level.
MAX_DEPTH = 100


@dataclass
class YamlDocument:
    """Parsed YAML data plus the line (1-based) of every key and list item."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # The text of each scalar as written, before YAML typed it (`mode: 0644` reads as 420).
    raw: dict[KeyPath, tuple[str, str]] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the longest prefix of ``path`` that the document has."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def issue(self, path: KeyPath, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), format_path(path), message)


def format_path(path: KeyPath) -> str:
    """``('a', 'b', 0, 1, 'c')`` -> ``a.b[0][1].c``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _record_lines(
    node: yaml.Node, path: KeyPath, doc: YamlDocument, issues: list[ConfigIssue]
) -> None:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(
                    ConfigIssue(
                        doc.file,
                        line,
                        format_path((*path, key)),
                        f"duplicate key '{key}' (first defined on line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            child = (*path, key)
            doc.lines[child] = line
            _record_lines(value_node, child, doc, issues)
    elif isinstance(node, yaml.ScalarNode):
        doc.raw[path] = (node.tag, node.value)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), doc, issues)


# libyaml when PyYAML was built with it: same nodes and marks, ~10x faster (measured: the
# inventory of a 100-host fleet took 0.4 s of the controller's CPU in pure Python).
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _children(node: yaml.Node) -> list[tuple[yaml.Node, str | int, int]]:
    """(child, its key or index, the line it is on) in document order; a key is a child too."""
    if isinstance(node, yaml.MappingNode):
        children: list[tuple[yaml.Node, str | int, int]] = []
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            children += [(key_node, key, line), (value_node, key, line)]
        return children
    if isinstance(node, yaml.SequenceNode):
        line = node.start_mark.line + 1
        return [(item, index, line) for index, item in enumerate(node.value)]
    return []


def _expanded_sizes(
    root: yaml.Node, doc: YamlDocument, error_type: type[ConfigError]
) -> dict[int, int]:
    """The size of every node with its aliases expanded, by ``id``: computed once per node (an
    alias is the node it names), so a bomb costs what is written, not what it expands to."""
    sizes: dict[int, int] = {}
    active: set[int] = {id(root)}
    # Frames of an iterative walk: node, its children, the next child, its size so far, path.
    stack: list[tuple[yaml.Node, list[tuple[yaml.Node, str | int, int]], list[int], KeyPath]] = [
        (root, _children(root), [0, 1], ())
    ]
    while stack:
        node, children, state, path = stack[-1]
        if state[0] == len(children):
            stack.pop()
            active.discard(id(node))
            sizes[id(node)] = state[1]
            if stack:
                stack[-1][2][1] += state[1]
            continue
        child, key, line = children[state[0]]
        state[0] += 1
        if id(child) in sizes:
            state[1] += sizes[id(child)]
        elif id(child) in active:
            message = "an alias refers to a node that contains it (a recursive alias)"
            raise error_type([ConfigIssue(doc.file, line, format_path((*path, key)), message)])
        elif len(stack) >= MAX_DEPTH:
            where = format_path(path[:5]) + "..."
            message = f"nested more than {MAX_DEPTH} levels deep"
            raise error_type([ConfigIssue(doc.file, line, where, message)])
        else:
            active.add(id(child))
            stack.append((child, _children(child), [0, 1], (*path, key)))
    return sizes


def _check_aliases(root: yaml.Node, doc: YamlDocument, error_type: type[ConfigError]) -> None:
    """Refuse a document whose aliases expand it too far, naming the alias where it happens."""
    sizes = _expanded_sizes(root, doc, error_type)
    written = len(sizes)
    allowed = max(ALIAS_NODES_FLOOR, written)
    if sizes[id(root)] - written <= allowed:
        return
    # Where the budget runs out: each node once in document order, each alias adding its size.
    added = 0
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        seen.add(id(node))
        pending = []
        for child, key, line in _children(node):
            if id(child) not in seen:
                pending.append((child, (*path, key)))
                seen.add(id(child))
                continue
            added += sizes[id(child)]
            if added > allowed:
                message = (
                    f"aliases expand the document to {sizes[id(root)]:,} nodes from {written:,} "
                    f"written; they may add at most {allowed:,} (write the repeated parts out)"
                )
                raise error_type([ConfigIssue(doc.file, line, format_path((*path, key)), message)])
        stack.extend(reversed(pending))
    raise AssertionError("the alias budget ran out somewhere")  # pragma: no cover


def parse_yaml(text: str, file: str, error_type: type[ConfigError] = ConfigError) -> YamlDocument:
    """Parse one YAML document safely; raise ``error_type`` naming the line on any problem."""
    loader = _LOADER(text)
    doc = YamlDocument(file=file, data=None)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_aliases(node, doc, error_type)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise error_type.single(file, f"malformed YAML: {problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise error_type.single(file, f"malformed YAML: {exc}") from exc
    finally:
        loader.dispose()
    doc.data = data
    issues: list[ConfigIssue] = []
    if node is not None:
        _record_lines(node, (), doc, issues)
    if issues:
        raise error_type(issues)
    return doc


def decode_utf8(data: bytes, file: str, error_type: type[ConfigError] = ConfigError) -> str:
    """``data`` as text; bytes that are not UTF-8 are an error naming their line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error_type.single(
            file, f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})", line=line
        ) from exc


def check_size(
    size: int, limit: int, file: str, error_type: type[ConfigError] = ConfigError
) -> None:
    """Refuse input over ``limit`` bytes (``size``: what was read, ``limit + 1`` at most)."""
    if size > limit:
        raise error_type.single(file, f"bigger than {_amount(limit)}, the most orchestrator reads")


def _amount(size: int) -> str:
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size:,} bytes"


def load_yaml(
    path: Path, error_type: type[ConfigError] = ConfigError, max_bytes: int = 8 * MIB
) -> YamlDocument:
    """Read and parse a YAML file of at most ``max_bytes``; a missing or unreadable file is a
    ``ConfigError`` too."""
    try:
        with path.open("rb") as handle:  # never more than the limit: the file may be a pipe
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise error_type.single(str(path), "file not found") from exc
    except OSError as exc:
        raise error_type.single(str(path), f"cannot read: {exc}") from exc
    check_size(len(data), max_bytes, str(path), error_type)
    return parse_yaml(decode_utf8(data, str(path), error_type), str(path), error_type)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def _message(error: Mapping[str, Any]) -> tuple[KeyPath, str]:
    loc: KeyPath = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden" and loc:
        return loc[:-1], f"unknown key '{loc[-1]}'"
    if kind == "missing" and loc:
        return loc[:-1], f"missing required key '{loc[-1]}'"
    context = error.get("ctx") or {}
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"expected a mapping (key: value), got {_kind_of(error.get('input'))}"
    if kind == "list_type":
        return loc, f"expected a list, got {_kind_of(error.get('input'))}"
    if kind == "too_long" and "max_length" in context:
        allowed, got = context["max_length"], context.get("actual_length")
        return loc, f"at most {allowed} entries allowed, got {got}"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return loc, message


def validate_document(
    model: type[ModelT],
    doc: YamlDocument,
    error_type: type[ConfigError] = ConfigError,
    context: dict[str, Any] | None = None,
) -> ModelT:
    """Validate ``doc.data`` against ``model``; every failure names file, line and key path."""
    if doc.data is None:
        raise error_type.single(doc.file, "the file is empty", line=1)
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc, message = _message(error)
            # The line of a missing key is its parent's; of an unknown key, the key itself.
            line_path = tuple(error["loc"]) if error["type"] == "extra_forbidden" else loc
            issues.append(ConfigIssue(doc.file, doc.line_of(line_path), format_path(loc), message))
        raise error_type(issues) from exc
