"""Revisions for the rollout tests: hello-web and variants of it, written into a test's tmp dir."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tests.paths import HELLO_WEB

FAIL_CHECK = """\
# Test hook: fail on purpose on the hosts listed in fail-addresses (by their SSH address).
if grep -qx "$ADDRESS" "$(dirname "$0")/../fail-addresses" 2>/dev/null; then
    echo "failing on purpose on $ADDRESS" >&2
    exit 1
fi
"""


def hello_web(tmp_path: Path, name: str = "hello-web") -> Path:
    target = tmp_path / name
    shutil.copytree(HELLO_WEB, target)
    return target


def failing_validate(tmp_path: Path, addresses: list[str], name: str = "failing") -> Path:
    """hello-web whose ValidateService fails on the given host addresses."""
    bundle = hello_web(tmp_path, name)
    (bundle / "fail-addresses").write_text("".join(f"{a}\n" for a in addresses))
    validate = bundle / "scripts" / "validate.sh"
    lines = validate.read_text().split("\n")
    # After `. common.sh`, which sets ADDRESS.
    at = next(i for i, line in enumerate(lines) if line.startswith(". ")) + 1
    validate.write_text("\n".join([*lines[:at], FAIL_CHECK, *lines[at:]]))
    return bundle


def script_bundle(
    tmp_path: Path,
    name: str,
    hooks: dict[str, str],
    *,
    appspec_extra: str = "",
    files: dict[str, str] | None = None,
    timeout: int = 30,
    runas: str | None = None,
) -> Path:
    """A revision with one sh script per event (body given) and optional files under app/."""
    bundle = tmp_path / name
    (bundle / "scripts").mkdir(parents=True)
    (bundle / "app").mkdir()
    for path, text in (files or {"index.txt": f"{name}\n"}).items():
        (bundle / "app" / path).parent.mkdir(parents=True, exist_ok=True)
        (bundle / "app" / path).write_text(text)
    hook_lines = []
    for event, body in hooks.items():
        script = bundle / "scripts" / f"{event}.sh"
        script.write_text("#!/bin/sh\nset -u\n" + textwrap.dedent(body))
        script.chmod(0o755)
        hook_lines.append(
            f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: {timeout}\n"
        )
        if runas:
            hook_lines.append(f"      runas: {runas}\n")
    (bundle / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: app\n    destination: /srv/{name}\n"
        + appspec_extra
        + ("hooks:\n" + "".join(hook_lines) if hook_lines else "")
    )
    return bundle
