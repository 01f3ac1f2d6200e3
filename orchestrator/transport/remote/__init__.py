"""POSIX sh programs run on hosts, shipped as package data and sent inline with each command."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def program(name: str) -> str:
    """The text of ``<name>.sh``."""
    return resources.files(__package__).joinpath(f"{name}.sh").read_text(encoding="utf-8")
