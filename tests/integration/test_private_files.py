"""What a deployment leaves on a host is the connecting user's alone, and what it installs keeps
the modes the bundle and the appspec give it (real sshd hosts)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.hostproto.scripts import host_tools
from orchestrator.lab import toolbox
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.helpers import rollout
from tests.integration.revisions import script_bundle
from tests.integration.test_hooks import runas_user  # noqa: F401 - a fixture

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")
PERMISSIONS = """\
permissions:
  - object: /srv/private
    pattern: "config.ini"
    mode: 640
    type: [file]
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _not_private(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that is not a 0700 directory or a 0600 file;
    a deployment-archive's contents aside (they keep the bundle's modes, which Install copies:
    the 0700 deployment-archive/ keeps other users out)."""
    wrong = []
    for top, dirs, files in os.walk(root):
        here = Path(top)
        if here.name == "deployment-archive":
            dirs.clear()
            files = []
        for path in [here] if here == root else []:
            if _mode(path) != 0o700:
                wrong.append(f"{path} {_mode(path):o}")
        for name in dirs:
            if _mode(here / name) != 0o700:
                wrong.append(f"{here / name}/ {_mode(here / name):o}")
        for name in files:
            if (here / name).is_symlink():
                continue  # a link's own mode is always 0777 on Linux and guards nothing
            if _mode(here / name) != 0o600:
                wrong.append(f"{here / name} {_mode(here / name):o}")
    return wrong


def test_a_deployment_on_the_host_is_private_and_installs_the_modes_asked_for(
    small_lab: Lab, tmp_path: Path
) -> None:
    hooks = {
        "BeforeInstall": "echo before\n",
        # A hook's own files get the session's umask, as before: 0644.
        "AfterInstall": "echo made > /srv/hook-made\n",
    }
    files = {"config.ini": "password=1\n", "tool.sh": "#!/bin/sh\n", "bundle-private": "k\n"}
    bundle = script_bundle(tmp_path, "private", hooks, files=files, appspec_extra=PERMISSIONS)
    (bundle / "app" / "tool.sh").chmod(0o755)
    (bundle / "app" / "bundle-private").chmod(0o600)
    (bundle / "app" / "config.ini").chmod(0o644)
    # Twice: the second deployment reuses the bundle on the host and removes the first install.
    # Between the two, the roots are opened as an earlier version left them: the next deployment
    # closes them.
    for opened in (False, True):
        if opened:
            for host in ("web-1", "web-2"):
                small_lab.host_path(host, small_lab.deployment_root(host)).chmod(0o755)
        result = rollout(small_lab, bundle, *ALL_AT_ONCE)
        assert result.exit_code == 0, result.stderr
    for host in ("web-1", "web-2"):
        root = small_lab.host_path(host, small_lab.deployment_root(host))
        assert _not_private(root) == []
        installed = small_lab.host_path(host, "/srv/private")
        assert _mode(installed) == 0o755
        assert _mode(installed / "config.ini") == 0o640
        assert _mode(installed / "tool.sh") == 0o755
        assert _mode(installed / "bundle-private") == 0o600
        assert _mode(small_lab.host_path(host, "/srv/hook-made")) == 0o644
        archives = list(root.glob("*/*/deployment-archive"))
        assert len(archives) == 2
        for archive in archives:
            assert _mode(archive / "app" / "config.ini") == 0o644
            assert _mode(archive / "app" / "tool.sh") == 0o755


def test_a_runas_hook_is_let_in_by_an_acl_and_no_other_user(
    small_lab: Lab,
    tmp_path: Path,
    runas_user: str,  # noqa: F811 - the fixture
) -> None:
    body = 'echo "user=$(id -un)"; ls > /dev/null\n'
    bundle = script_bundle(tmp_path, "runas-private", {"AfterInstall": body}, runas=runas_user)
    result = rollout(small_lab, bundle, *ALL_AT_ONCE)
    assert result.exit_code == 0, result.stderr
    event = result.event("web-1", "AfterInstall")
    assert f"user={runas_user}" in event["diagnostics"]["logTail"]
    assert not event.get("warnings")
    root = small_lab.host_path("web-1", small_lab.deployment_root("web-1"))
    (archive,) = root.glob("*/*/deployment-archive")
    for path in (root, archive.parent.parent, archive.parent, archive):
        assert _mode(path) & 0o007 == 0, f"{path} {_mode(path):o}"


def test_without_setfacl_a_runas_hook_runs_and_says_the_way_was_opened(
    tmp_path: Path,
    runas_user: str,  # noqa: F811 - the fixture
) -> None:
    tools = toolbox.only(tmp_path / "bin", [*host_tools(), "su", "timeout"])
    lab = start_lab(tmp_path / "lab", 1, session_path=tools)
    try:
        # The lab's PATH directory is in the test's private tmp dir: id by its own path.
        body = 'echo "user=$(/usr/bin/id -un)"\n'
        bundle = script_bundle(tmp_path, "runas-open", {"AfterInstall": body}, runas=runas_user)
        result = rollout(lab, bundle, *ALL_AT_ONCE)
        assert result.exit_code == 0, result.stderr
        event = result.event("web-1", "AfterInstall")
        assert f"user={runas_user}" in event["diagnostics"]["logTail"]
        assert any("the host has no setfacl" in w for w in event.get("warnings", [])), event
    finally:
        lab.down()
