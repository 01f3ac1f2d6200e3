"""Unusual names end to end: every string that reaches a host, deployed and checked there.

Spaces, both quotes, ``$(...)``, backticks, a backslash, glob characters and non-ASCII letters in
the deployment root, the group id, file and directory names, link targets, the destination, the
permissions object, hook script names and locations (run as root and through runas), the
revision's own path and the description; application and group names with every character their pattern allows.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab

# Were any of it read by a shell, `id` would run and the names would not match.
WEIRD = 'it\'s "q" $(id) `id` \\b ü [x]* ~'
APP = "shop+1"
GROUP = "we.b@=,_-x"
GROUP_ID = f"group {WEIRD}"
DESTINATION = f"/srv/dest {WEIRD}"
HOOK = f"scripts/{WEIRD}/hook {WEIRD}.sh"
HOSTS = ("web-1", "web-2")
HOOK_BODY = """\
#!/bin/sh
# What the hook saw, one value a line; and output that rich would read as markup.
printf '%s\\n' "$APPLICATION_NAME" "$DEPLOYMENT_GROUP_NAME" "$DEPLOYMENT_GROUP_ID" \\
    "$LIFECYCLE_EVENT" "$PWD" "$0" "$(id -un)" > "/srv/out/hook-$LIFECYCLE_EVENT.txt"
echo "[/b] [bold]$LIFECYCLE_EVENT[/bold] [red"
"""


def _root(lab: Lab, host: str) -> tuple[str, Path]:
    """The host's weird deployment root, and a canary directory beside it whose name is the
    root's text up to its first space (what a word-split root would name)."""
    parent = Path(lab.deployment_root(host)).parent.parent
    canary = lab.host_path(host, str(parent / "my"))
    return f"{parent}/my root/ {WEIRD} ", canary  # leading and trailing spaces too


def _inventory(lab: Lab, tmp_path: Path) -> Path:
    data: dict[str, Any] = yaml.safe_load(lab.inventory_path.read_text())
    data["defaults"]["max_revisions"] = 1
    for host in HOSTS:
        data["hosts"][host]["deployment_root"] = _root(lab, host)[0]
    data["applications"][APP] = {
        "deployment_groups": {
            GROUP: {
                "id": GROUP_ID,
                "hosts": list(HOSTS),
                "deployment_config": "CodeDeployDefault.AllAtOnce",
            }
        }
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _bundle(tmp_path: Path, version: int) -> Path:
    bundle = tmp_path / f"bundle {version} [/b] {WEIRD}"
    files = bundle / "app" / WEIRD
    files.mkdir(parents=True)
    (files / f"file {WEIRD}.txt").write_text(f"weird {version}\n")
    (files / f"only in {version}.txt").write_text("x\n")
    (bundle / "app" / f"link {WEIRD}").symlink_to(f"{WEIRD}/file {WEIRD}.txt")
    script = bundle / HOOK
    script.parent.mkdir(parents=True)
    script.write_text(HOOK_BODY)
    script.chmod(0o755)
    hook = {"location": HOOK, "timeout": 30}
    appspec = {
        "version": 0.0,
        "os": "linux",
        "files": [{"source": "app", "destination": DESTINATION}],
        "permissions": [
            {"object": f"{DESTINATION}/{WEIRD}", "type": ["file"], "mode": "640"},
            {"object": DESTINATION, "pattern": "it*", "type": ["directory"], "mode": "750"},
        ],
        "hooks": {"ApplicationStop": [hook], "AfterInstall": [{**hook, "runas": "nobody"}]},
    }
    (bundle / "appspec.yml").write_text(yaml.safe_dump(appspec, allow_unicode=True))
    return bundle


def _rollout(inventory: Path, bundle: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli,
        [
            "-i",
            str(inventory),
            "rollout",
            "-a",
            APP,
            "-g",
            GROUP,
            "-r",
            str(bundle),
            "--description",
            f"[/b] {WEIRD}",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_unusual_names_in_everything_that_reaches_a_host(small_lab: Lab, tmp_path: Path) -> None:
    inventory = _inventory(small_lab, tmp_path)
    for host in HOSTS:
        canary = _root(small_lab, host)[1]
        canary.mkdir(parents=True)
        (canary / "keep").write_text("keep\n")
        out = small_lab.host_path(host, "/srv/out")
        out.mkdir(parents=True)
        out.chmod(0o777)  # for the hook that runs as nobody
    ids = []
    for version in (1, 2, 3):
        document = _rollout(inventory, _bundle(tmp_path, version))
        ids.append(document["deploymentId"])
        for host in HOSTS:
            dest = small_lab.host_path(host, DESTINATION)
            assert (dest / WEIRD / f"file {WEIRD}.txt").read_text() == f"weird {version}\n"
            assert (dest / WEIRD / f"only in {version}.txt").exists()
            # The previous revision's own file is removed by the cleanup file.
            assert not (dest / WEIRD / f"only in {version - 1}.txt").exists()
            assert (dest / f"link {WEIRD}").readlink() == Path(f"{WEIRD}/file {WEIRD}.txt")
            assert stat.S_IMODE((dest / WEIRD / f"file {WEIRD}.txt").stat().st_mode) == 0o640
            assert stat.S_IMODE((dest / WEIRD).stat().st_mode) == 0o750
            root, canary = _root(small_lab, host)
            archive = f"{root}/{GROUP_ID}/{ids[-1]}/deployment-archive"
            seen = small_lab.host_path(host, "/srv/out/hook-AfterInstall.txt").read_text()
            assert seen.split("\n") == [
                APP,
                GROUP,
                GROUP_ID,
                "AfterInstall",
                archive,
                f"{archive}/{HOOK}",
                "nobody",
                "",
            ]
            if version > 1:
                # ApplicationStop ran the previous revision's script, found through the root.
                stopped = small_lab.host_path(host, "/srv/out/hook-ApplicationStop.txt")
                lines = stopped.read_text().split("\n")
                assert lines[4] == f"{root}/{GROUP_ID}/{ids[-2]}/deployment-archive"
                assert lines[6] == "root"
            # Retention kept this deployment and the last successful one, and removed nothing
            # else: not the directory a word-split root would name.
            group_dir = small_lab.host_path(host, f"{root}/{GROUP_ID}")
            assert {p.name for p in group_dir.iterdir()} == set(ids[-2:])
            assert (canary / "keep").read_text() == "keep\n"
            instructions = small_lab.host_path(host, f"{root}/deployment-instructions")
            cleanup = (instructions / f"{GROUP_ID}-cleanup").read_text().split("\n")
            assert f"{DESTINATION}/{WEIRD}/file {WEIRD}.txt" in cleanup
    runner = CliRunner()
    status = runner.invoke(cli, ["status", ids[-1]])
    assert status.exit_code == 0, (status.output, status.exception)
    assert "[/b] it's" in status.stdout  # the revision's path
    logs = runner.invoke(cli, ["logs", ids[-1], "--host", "web-1", "--event", "AfterInstall"])
    assert logs.exit_code == 0, (logs.output, logs.exception)
    assert "[stdout][/b] [bold]AfterInstall[/bold] [red" in logs.stdout
