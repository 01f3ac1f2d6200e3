"""Fails when an installed distribution is missing from the constraints file or differs from its
pin: a dependency added without a pin would otherwise float to whatever the registry serves."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

# Installed by the environment itself, not by the project.
IGNORED = {"pip", "setuptools", "wheel", "orchestrator"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(constraints_path: str) -> int:
    pins: dict[str, str] = {}
    for line in Path(constraints_path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    problems = []
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"])
        if name in IGNORED:
            continue
        if name not in pins:
            problems.append(f"{name} {dist.version} is installed but not pinned")
        elif pins[name] != dist.version:
            problems.append(f"{name} {dist.version} is installed, pinned at {pins[name]}")
    for problem in problems:
        print(f"ci: {constraints_path}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
