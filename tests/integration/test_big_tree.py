"""A revision of 200,000 files through a whole cycle on a real sshd host: first deployment,
redeploy, and a rollback to the revision before it, which removes all of it. Before Install decided on the host what the
previous install owns, every probe after the first deployment carried the whole cleanup file
and failed ("connection closed"), and the group was stuck.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.helpers import rollout

FILES = 200_000
PER_DIRECTORY = 1000  # few directories: one cp per 256 files of a directory keeps this quick
DESTINATION = "/srv/tree"
APPSPEC = f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {DESTINATION}\n"
ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")


@pytest.fixture
def one_host(tmp_path: Path) -> Iterator[Lab]:
    fleet = start_lab(tmp_path / "lab", 1)
    yield fleet
    fleet.down()
    # Hundreds of thousands of files: gone now, not left for pytest to remove sessions later.
    shutil.rmtree(tmp_path / "lab", ignore_errors=True)


def name(index: int) -> str:
    return f"d{index // PER_DIRECTORY:03}/f{index}.js"


def big_tree(path: Path) -> Path:
    """A tar of FILES files, one a directory holding a few bytes, the others empty."""
    with tarfile.open(path, "w") as tar:

        def add(member: str, data: bytes | None = None) -> None:
            info = tarfile.TarInfo(member)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size, info.mode = len(data), 0o644
            tar.addfile(info, None if data is None else io.BytesIO(data))

        add("appspec.yml", APPSPEC.encode())
        add("app")
        for i in range(FILES):
            if i % PER_DIRECTORY == 0:
                add(f"app/d{i // PER_DIRECTORY:03}")
            # Empty but for one a directory: what costs is the number of files, not their bytes.
            add(f"app/{name(i)}", f"{i}\n".encode() if i % PER_DIRECTORY == 0 else b"")
    return path


def files_in(lab: Lab) -> int:
    return sum(len(names) for _, _, names in os.walk(lab.host_path("web-1", DESTINATION)))


def install_output(deployment_id: str) -> str:
    command = ["logs", deployment_id, "--event", "Install", "--output", "json"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    return str(next(row for row in json.loads(result.stdout) if row["host"] == "web-1")["output"])


def test_a_200000_file_revision_installs_redeploys_and_is_rolled_back_and_cleaned_up(
    one_host: Lab, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    (small / "app").mkdir(parents=True)
    (small / "appspec.yml").write_text(APPSPEC)
    (small / "app" / "only.txt").write_text("only\n")
    before = rollout(one_host, small, *ALL_AT_ONCE)
    assert before.exit_code == 0, before.stderr
    installed = one_host.host_path("web-1", DESTINATION)

    tree = big_tree(tmp_path / "tree.tar")
    first = rollout(one_host, tree, *ALL_AT_ONCE)
    assert first.exit_code == 0, first.stderr
    assert files_in(one_host) == FILES
    assert not (installed / "only.txt").exists()
    assert (installed / name(FILES - PER_DIRECTORY)).read_text() == f"{FILES - PER_DIRECTORY}\n"
    assert (installed / name(FILES - 1)).read_text() == ""

    # The probe no longer carries the cleanup file (about 5 MB here): the redeploy connects,
    # and keeps every unchanged file.
    again = rollout(one_host, tree, *ALL_AT_ONCE)
    assert again.exit_code == 0, again.stderr
    assert f"kept {FILES} unchanged" in install_output(again.document["deploymentId"])
    assert files_in(one_host) == FILES

    # Rolled back to the small revision: every file and directory of the big one removed.
    command = ["-i", str(one_host.inventory_path), "rollback", "-a", "hello", "-g", "web"]
    command += ["--to", before.document["deploymentId"], "--output", "json", *ALL_AT_ONCE]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["creator"] == "rollback"
    assert sorted(p.name for p in installed.iterdir()) == ["only.txt"]


def test_retain_reports_a_count_and_the_first_names(small_lab: Lab, tmp_path: Path) -> None:
    """RETAIN once printed a line per file it kept: with a big tree, megabytes of Install output
    in the history."""
    bundle = tmp_path / "bundle"
    (bundle / "app").mkdir(parents=True)
    (bundle / "appspec.yml").write_text(APPSPEC)
    for i in range(40):
        (bundle / "app" / f"f{i:02}.txt").write_text("from the bundle\n")
        placed = small_lab.host_path("web-1", f"{DESTINATION}/f{i:02}.txt")
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.write_text("placed by hand\n")
    result = rollout(small_lab, bundle, "--file-exists-behavior", "RETAIN", *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    output = install_output(result.document["deploymentId"])
    retained = [line for line in output.splitlines() if "retained" in line]
    names = ", ".join(f"{DESTINATION}/f{i:02}.txt" for i in range(5))
    assert retained == [
        f"retained 40 existing file(s) (file_exists_behavior RETAIN): {names} and 35 more"
    ]
    assert small_lab.host_path("web-1", f"{DESTINATION}/f39.txt").read_text() == "placed by hand\n"
