"""POSIX sh programs run on hosts, shipped as package data and sent inline: once per session to
the runner, which holds them all, or with the command on a channel of its own."""

from __future__ import annotations

import functools
import shlex
from importlib import resources


@functools.cache
def program(name: str) -> str:
    """The text of ``<name>.sh``."""
    return resources.files(__package__).joinpath(f"{name}.sh").read_text(encoding="utf-8")


# The programs a session's runner holds; `supervise` is launched by `hook`, which finds its text
# in ORCHESTRATOR_SUPERVISE.
PROGRAMS = ("probe", "lock", "download", "install", "hook", "supervise", "finish")


@functools.cache
def runner_program() -> str:
    """``runner.sh`` preceded by every program as a shell function of the same name."""
    definitions = [f"program_{name}={shlex.quote(program(name))}" for name in PROGRAMS]
    definitions += [f'{name}() {{ sh -c "$program_{name}" {name} "$@"; }}' for name in PROGRAMS]
    definitions.append('export ORCHESTRATOR_SUPERVISE="$program_supervise"')
    return "\n".join(definitions) + "\n" + program("runner")
