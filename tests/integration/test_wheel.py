"""The package as users install it: a wheel built from the source, installed in a fresh virtualenv
outside the repository, holds every host program and the package's data, and runs its CLI.

The editable install the tests run from reads ``orchestrator/hostproto/programs`` in the checkout:
a program missing from ``package-data`` would pass every other test and fail every deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.paths import REPO

# Run in the fresh environment, outside the repository: what the installed package holds.
CHECK = """
import json, sys
from importlib import resources
import orchestrator
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.hostproto.requests import Program
from orchestrator.hostproto.scripts import channel_program, host_tools, program, runner_program

shipped = sorted(p.name for p in resources.files("orchestrator.hostproto").joinpath("programs").iterdir())
texts = {name: program(name.removesuffix(".sh")) for name in shipped if name.endswith(".sh")}
runner = runner_program()
print(json.dumps({
    "package": orchestrator.__file__,
    "shipped": shipped,
    "in_runner": all(f"{p.value}() (" in runner for p in Program),
    "channels": all(channel_program(p.value).endswith(texts[p.value + ".sh"]) for p in Program),
    "tools": list(host_tools()),
    "standalone": HOST_PROGRAMS.standalone("hook")[0] == channel_program("hook"),
    "typed": resources.files("orchestrator").joinpath("py.typed").is_file(),
}))
"""


def _source(into: Path) -> Path:
    """What the build reads, copied out of the checkout (the build writes build/ and egg-info)."""
    source = into / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "orchestrator", source / "orchestrator", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


def test_the_wheel_holds_every_host_program(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), "."],
        cwd=_source(tmp_path),
        check=True,
        timeout=300,
    )
    [wheel] = wheels.glob("orchestrator-*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*install, "--no-deps", str(wheel)], check=True, timeout=300)
    # The dependencies from the test environment, as a plain path (its .pth files, the editable
    # install's among them, are not read from there): orchestrator comes from the wheel alone.
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "test-dependencies.pth").write_text(f"{ours}\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    done = subprocess.run(
        [python, "-I", "-c", CHECK],
        check=False,
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["package"].startswith(str(fresh)), found["package"]
    expected = sorted(p.name for p in (REPO / "orchestrator/hostproto/programs").glob("*.sh"))
    assert found["shipped"] == expected
    assert found["in_runner"] and found["channels"] and found["standalone"] and found["typed"]
    assert "setsid" in found["tools"]
    # The installed command, with no PYTHONPATH that could lead it back to a checkout.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    cli = subprocess.run(
        [fresh / "bin" / "orchestrator", "--version"],
        check=False,
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "0.1.0" in cli.stdout, cli.stderr
