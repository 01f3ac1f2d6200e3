"""Which characters user text may hold where it reaches a host (README: "Unusual names").

Paths, owners, groups, acls, contexts, hook locations, the deployment root and the group id
travel to hosts inside line-based, tab-separated files (install instructions, cleanup files, one
path a line). Everything else is taken literally, so the one rule is: no control characters
(tab, newline, NUL, DEL, the C1 range) and no line or paragraph separators, which would split
those lines. Supporting them would need another format on every host for names no fleet uses.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_NAMES = {"\t": "tab", "\n": "newline", "\r": "carriage return", "\0": "NUL"}
# Top-level names of a deployment root: a group id naming one of them would share it.
ROOT_ENTRIES = frozenset({"deployment-instructions", "ongoing-deployment", "locks"})
MAX_GROUP_ID_BYTES = 200  # its files on hosts add up to 26 bytes; names stop at 255


def shown(value: str) -> str:
    """``value`` on one line: control characters escaped, undecodable bytes (the surrogates
    Python reads them as) as ``\\xNN``."""
    return "".join(_escaped(character) for character in value)


def _escaped(character: str) -> str:
    if unicodedata.category(character) not in _REFUSED_CATEGORIES:
        return character
    if 0xDC80 <= ord(character) <= 0xDCFF:
        return f"\\x{ord(character) - 0xDC00:02x}"
    return character.encode("unicode_escape").decode("ascii")


def _bad_character(value: str) -> str | None:
    if value.isprintable():  # in C: no Cc, Cs, Zl or Zp (a 200,000-name revision checks each)
        return None
    for character in value:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            return character
    return None


def control_problem(value: str) -> str | None:
    """Why ``value`` cannot reach a host, or None."""
    character = _bad_character(value)
    if character is None:
        return None
    name = _NAMES.get(character) or unicodedata.name(character, "").lower()
    code = f"U+{ord(character):04X}" + (f" ({name})" if name else "")
    return (
        f"'{shown(value)}' holds {code}: control characters (tab, newline, NUL, ...) and line "
        "separators are not allowed in names and paths"
    )


def _host_text(value: str) -> str:
    problem = control_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _no_option(value: str) -> str:
    if value.startswith("-"):
        raise ValueError(f"'{value}' must not start with '-' (it would read as an option)")
    return value


def _account(value: str) -> str:
    _no_option(value)
    if ":" in value:
        raise ValueError(f"'{value}' must not hold ':' (it separates owner and group)")
    return value


def _group_id(value: str) -> str:
    if value in ("", ".", "..") or "/" in value:
        raise ValueError(
            f"group id '{value}' must be a file name: not empty, '.', '..' or with '/'"
        )
    if value in ROOT_ENTRIES:
        raise ValueError(f"group id '{value}' is a name the deployment root uses itself")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_GROUP_ID_BYTES:
        raise ValueError(f"group id is longer than {MAX_GROUP_ID_BYTES} bytes (UTF-8)")
    return value


HostText = Annotated[str, AfterValidator(_host_text)]
"""Text that reaches a host: no control characters."""
OptionSafeText = Annotated[str, AfterValidator(_host_text), AfterValidator(_no_option)]
"""Text given to a host's command as an argument before ``--``: no leading '-' either."""
AccountName = Annotated[str, AfterValidator(_host_text), AfterValidator(_account)]
"""An owner or group for chown: no leading '-', no ':'."""
GroupId = Annotated[str, AfterValidator(_host_text), AfterValidator(_group_id)]
"""A deployment group's id: one directory and file-name part on every host."""
