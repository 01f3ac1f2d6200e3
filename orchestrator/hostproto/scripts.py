"""The host programs' text: POSIX sh shipped as package data (``programs/*.sh``) and sent inline,
once per session to the runner, which holds them all, or with the command on a channel of its
own. Either way ``umask.sh`` comes first (what they write under the deployment root is private),
then ``frame.sh``: it reads the session's secret and defines how every reply is framed
(``framing.py`` is the controller's side of that format)."""

from __future__ import annotations

import functools
import shlex
from importlib import resources

from orchestrator.hostproto.requests import Program

# The programs a session's runner holds as functions; `supervise` is launched by `hook` (in a
# session of its own), which finds its text in ORCHESTRATOR_SUPERVISE.
PROGRAMS = tuple(name.value for name in Program)
SUPERVISE_VARIABLE = "ORCHESTRATOR_SUPERVISE"


@functools.cache
def program(name: str) -> str:
    """The text of ``programs/<name>.sh``."""
    path = resources.files(__package__).joinpath("programs", f"{name}.sh")
    return path.read_text(encoding="utf-8")


@functools.cache
def runner_program() -> str:
    """``runner.sh`` preceded by every program as a shell function of the same name.

    A function whose body is a subshell: the program's `exit`, `set -e` and variables stay in its
    own fork, as they would in `sh -c`, without an exec of sh and a parse of its text per call.
    """
    definitions = [program("umask"), program("frame")]
    definitions.extend(f"{name}() (\n{program(name)}\n)" for name in PROGRAMS)
    definitions.append(f"export {SUPERVISE_VARIABLE}={shlex.quote(program('supervise'))}")
    return "\n".join(definitions) + "\n" + program("runner")


@functools.cache
def channel_program(name: str) -> str:
    """``<name>.sh`` as run on a channel of its own: after ``umask.sh`` and ``frame.sh``, like
    the runner's."""
    return program("umask") + program("frame") + program(name)


def channel_env(name: str) -> dict[str, str]:
    """The environment ``<name>.sh`` needs on a channel of its own, which the runner's text
    exports for all of them: ``hook`` starts ``supervise`` from its text."""
    return {SUPERVISE_VARIABLE: program("supervise")} if name == Program.HOOK else {}


@functools.cache
def host_tools() -> tuple[str, ...]:
    """The commands the host programs need on the host's PATH, as the probe checks them."""
    for line in program("probe").splitlines():
        if line.startswith("tools='"):
            return tuple(line.removeprefix("tools='").removesuffix("'").split())
    raise ValueError("probe.sh has no tools='...' line")
