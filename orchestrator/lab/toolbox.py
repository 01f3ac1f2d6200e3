"""Directories of commands for a lab host's PATH (``Lab.up(session_path=...)``): a host whose
only tools are busybox's applets, or one with exactly the tools named and nothing else."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import LabError

BUSYBOX_INSTALL_HINT = (
    "busybox is not installed. Install it, for example with 'apt-get install busybox-static' "
    "(Debian/Ubuntu)."
)


def busybox(directory: Path) -> Path:
    """``directory`` with a link to busybox for each applet it has (``sh`` among them)."""
    binary = shutil.which("busybox")
    if binary is None:
        raise LabError(BUSYBOX_INSTALL_HINT)
    applets = subprocess.run(
        [binary, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    directory.mkdir(parents=True, exist_ok=True)
    for applet in applets:
        link = directory / applet
        if not link.is_symlink():
            link.symlink_to(binary)
    return directory


def only(directory: Path, tools: Iterable[str], shell: str = "dash") -> Path:
    """``directory`` with a link to each of ``tools`` as the machine has it, and ``sh`` linked to
    ``shell``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, command in [*((tool, tool) for tool in tools), ("sh", shell)]:
        found = shutil.which(command)
        if found is None:
            raise LabError(f"{command} is not installed on this machine")
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(found)
    return directory
