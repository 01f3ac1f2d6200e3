"""Rollouts of real revisions to real sshd hosts: configs, replacement, conflicts, failures."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.integrations.webhooks import SEND_TIMEOUT
from orchestrator.lab.fleet import Lab
from orchestrator.models.inventory import load_inventory
from tests.integration.helpers import fetch, rollout, start_orchestrator
from tests.integration.revisions import failing_validate, hello_web, script_bundle
from tests.webhook_receiver import receiver, trickler

HOSTS = ["web-1", "web-2", "web-3", "web-4", "web-5"]


def group_root(lab: Lab, host: str) -> Path:
    gid = load_inventory(lab.inventory_path).group_id("hello", "web")
    return lab.host_path(host, lab.deployment_root(host)) / gid


def instructions(lab: Lab, host: str) -> Path:
    return lab.host_path(host, lab.deployment_root(host)) / "deployment-instructions"


def tree(path: Path) -> dict[str, str]:
    """Every path below ``path`` with a digest of its content (or its link target).

    The markers of the last attempt (`_last_deployment`, `_most_recent_install`) are left out:
    they record that a deployment was tried, which is not what a refused install may change.
    """
    snapshot = {}
    for item in sorted(path.rglob("*")):
        if item.name.endswith(("_last_deployment", "_most_recent_install")):
            continue
        if item.is_symlink():
            snapshot[str(item)] = "-> " + str(item.readlink())
        elif item.is_file():
            snapshot[str(item)] = hashlib.sha256(item.read_bytes()).hexdigest()
        else:
            snapshot[str(item)] = "dir"
    return snapshot


@pytest.mark.parametrize(
    "config,concurrency",
    [
        ("CodeDeployDefault.OneAtATime", 1),
        ("CodeDeployDefault.HalfAtATime", 2),
        ("CodeDeployDefault.AllAtOnce", 5),
        ("ThreeQuarters", 1),
    ],
)
def test_hello_web_to_five_hosts(fleet: Lab, tmp_path: Path, config: str, concurrency: int) -> None:
    result = rollout(fleet, hello_web(tmp_path), "--deployment-config", config)
    assert result.exit_code == 0, result.stderr
    assert result.document["status"] == "Succeeded"
    assert result.document["deploymentOverview"]["Succeeded"] == 5
    assert result.max_concurrency() == concurrency
    for host in fleet.hosts:
        assert "hello-web" in fetch(host.address)
        assert fleet.host_path(host.name, "/srv/hello-web/www/index.html").exists()
        events = result.target(host.name)["lifecycleEvents"]
        assert [e["status"] for e in events] == ["Succeeded"] * 7


def test_zonal_custom_config_goes_zone_by_zone(fleet: Lab, tmp_path: Path) -> None:
    result = rollout(fleet, hello_web(tmp_path), group="web-zonal")
    assert result.exit_code == 0, result.stderr
    order = [r["host"] for r in result.events if r["type"] == "TargetStarted"]
    zones = [r["zone"] for r in result.events if r["type"] == "ZoneBaking"]
    assert zones == ["lab-a"]
    assert order[:3] == ["web-1", "web-3", "web-5"]  # zone lab-a first, then lab-b


def test_status_history_and_logs_read_the_record(fleet: Lab, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli.main import cli

    result = rollout(
        fleet, hello_web(tmp_path), "--deployment-config", "CodeDeployDefault.AllAtOnce"
    )
    deployment_id = result.document["deploymentId"]
    runner = CliRunner()
    status = runner.invoke(cli, ["status", "--output", "json"])
    assert status.exit_code == 0
    import json

    assert json.loads(status.stdout) == result.document
    history = runner.invoke(cli, ["history", "-a", "hello", "--output", "json"])
    assert [d["deploymentId"] for d in json.loads(history.stdout)] == [deployment_id]
    assert "targets" not in json.loads(history.stdout)[0]
    logs = runner.invoke(
        cli, ["logs", deployment_id, "--host", "web-2", "--event", "ApplicationStart"]
    )
    assert logs.exit_code == 0
    assert "==> web-2 ApplicationStart <==" in logs.stdout
    assert "[stdout]started hello-web on" in logs.stdout
    assert runner.invoke(cli, ["status", "d-NOSUCHONE"]).exit_code == 2


def test_second_revision_replaces_the_first(fleet: Lab, tmp_path: Path) -> None:
    stop_marker = 'echo "stop script of {name} ran" > /srv/stop-{name}\n'
    first = script_bundle(
        tmp_path,
        "rev",
        {"ApplicationStop": stop_marker.format(name="rev1")},
        files={"one.txt": "1\n", "common/shared.txt": "one\n", "old/only.txt": "1\n"},
    )
    first_result = rollout(fleet, first, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert first_result.exit_code == 0, first_result.stderr
    common = {host: fleet.host_path(host, "/srv/rev/common").stat().st_ino for host in HOSTS}
    second = tmp_path / "second"
    second.mkdir()
    second_bundle = script_bundle(
        second,
        "rev",
        {"ApplicationStop": stop_marker.format(name="rev2")},
        files={"two.txt": "2\n", "common/shared.txt": "two\n"},
    )
    result = rollout(fleet, second_bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert result.exit_code == 0, result.stderr
    for host in HOSTS:
        srv = fleet.host_path(host, "/srv")
        assert not (srv / "rev" / "one.txt").exists()  # revision 1's files are gone
        assert (srv / "rev" / "two.txt").read_text() == "2\n"
        assert (srv / "rev" / "common" / "shared.txt").read_text() == "two\n"
        # A directory both revisions install stays (emptied and filled, not removed and made);
        # one only revision 1 had is removed.
        assert (srv / "rev" / "common").stat().st_ino == common[host]
        assert not (srv / "rev" / "old").exists()
        # Only what no copy replaces goes through the removal pass (the copies remove theirs);
        # what is in the way of a copy too, but only where cp is not GNU's.
        script = group_root(fleet, host) / result.document["deploymentId"] / "install.sh"
        removal, in_the_way = script.read_text().split("| xargs -0 -r rm -f --")[:2]
        assert "'/srv/rev/one.txt'" in removal and "'/srv/rev/old/only.txt'" in removal
        assert "shared.txt" not in removal
        assert in_the_way.lstrip().startswith("case $(cp --version 2> /dev/null) in")
        assert "shared.txt" in in_the_way
        assert (srv / "stop-rev1").exists()  # revision 1's ApplicationStop ran
        assert not (srv / "stop-rev2").exists()  # revision 2's did not
        cleanup = next(instructions(fleet, host).glob("*-cleanup")).read_text().split()
        assert "/srv/rev/two.txt" in cleanup and "/srv/rev/one.txt" not in cleanup


def test_disallow_conflict_leaves_the_host_as_it_was(fleet: Lab, tmp_path: Path) -> None:
    first = rollout(
        fleet, hello_web(tmp_path), "--deployment-config", "CodeDeployDefault.AllAtOnce"
    )
    assert first.exit_code == 0
    second = hello_web(tmp_path, "second")
    (second / "www" / "new.html").write_text("new\n")
    stray = fleet.host_path("web-1", "/srv/hello-web/www/new.html")
    stray.write_text("placed by hand\n")
    before = {
        **tree(fleet.host_path("web-1", "/srv/hello-web/www")),
        **tree(instructions(fleet, "web-1")),
    }
    result = rollout(fleet, second)  # OneAtATime: web-1 goes first
    assert result.exit_code == 5
    install = result.event("web-1", "Install")
    assert install["status"] == "Failed"
    assert (
        "already exists at this location: /srv/hello-web/www/new.html"
        in install["diagnostics"]["message"]
    )
    after = {
        **tree(fleet.host_path("web-1", "/srv/hello-web/www")),
        **tree(instructions(fleet, "web-1")),
    }
    assert after == before  # nothing removed, nothing recorded
    assert result.statuses() == {
        "web-1": "Failed",
        "web-2": "Skipped",
        "web-3": "Skipped",
        "web-4": "Skipped",
        "web-5": "Skipped",
    }
    assert result.document["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"


def test_a_link_to_a_file_where_a_directory_goes_leaves_the_host_as_it_was(
    fleet: Lab, tmp_path: Path
) -> None:
    """A link is resolved on the host, just before anything changes: nothing removed there."""
    first = rollout(
        fleet, hello_web(tmp_path), "--deployment-config", "CodeDeployDefault.AllAtOnce"
    )
    assert first.exit_code == 0
    second = hello_web(tmp_path, "second")
    appspec = second / "appspec.yml"
    appspec.write_text(
        appspec.read_text().replace(
            "files:\n", "files:\n  - source: www\n    destination: /srv/linked/www\n", 1
        )
    )
    fleet.host_path("web-1", "/srv/plain.txt").write_text("a file\n")
    fleet.host_path("web-1", "/srv/linked").symlink_to("/srv/plain.txt")
    before = {
        **tree(fleet.host_path("web-1", "/srv/hello-web/www")),
        **tree(instructions(fleet, "web-1")),
    }
    result = rollout(fleet, second)  # OneAtATime: web-1 goes first
    assert result.exit_code == 5
    install = result.event("web-1", "Install")
    assert install["status"] == "Failed"
    message = install["diagnostics"]["message"]
    assert "cannot create directory /srv/linked: a file is in the way" in message
    assert "install refused before any change" in message
    after = {
        **tree(fleet.host_path("web-1", "/srv/hello-web/www")),
        **tree(instructions(fleet, "web-1")),
    }
    assert after == before  # the first revision's files are all still there, still recorded
    assert fleet.host_path("web-1", "/srv/hello-web/www/index.html").is_file()
    assert fleet.host_path("web-1", "/srv/linked").readlink() == Path("/srv/plain.txt")


@pytest.mark.parametrize("behavior", ["OVERWRITE", "RETAIN"])
def test_overwrite_and_retain(fleet: Lab, tmp_path: Path, behavior: str) -> None:
    bundle = hello_web(tmp_path)
    (bundle / "www" / "extra.html").write_text("from the bundle\n")
    stray = fleet.host_path("web-1", "/srv/hello-web/www/extra.html")
    stray.parent.mkdir(parents=True)
    stray.write_text("placed by hand\n")
    result = rollout(
        fleet,
        bundle,
        "--file-exists-behavior",
        behavior,
        "--deployment-config",
        "CodeDeployDefault.AllAtOnce",
    )
    assert result.exit_code == 0, result.stderr
    cleanup = next(instructions(fleet, "web-1").glob("*-cleanup")).read_text().split()
    if behavior == "OVERWRITE":
        assert stray.read_text() == "from the bundle\n"
        assert "/srv/hello-web/www/extra.html" in cleanup  # adopted: the next install removes it
    else:
        assert stray.read_text() == "placed by hand\n"
        assert "/srv/hello-web/www/extra.html" not in cleanup  # never adopted
    assert "/srv/hello-web/www/index.html" in cleanup
    assert result.document["fileExistsBehavior"] == behavior


@pytest.mark.parametrize(
    "config,failing,exit_code,statuses,error",
    [
        (
            "CodeDeployDefault.HalfAtATime",
            ["web-1", "web-2"],
            5,
            ["Failed", "Failed", "Skipped", "Skipped", "Skipped"],
            "HEALTH_CONSTRAINTS",
        ),
        (
            "CodeDeployDefault.HalfAtATime",
            ["web-5"],
            4,
            ["Succeeded", "Succeeded", "Succeeded", "Succeeded", "Failed"],
            None,
        ),
        (
            "CodeDeployDefault.HalfAtATime",
            ["web-1", "web-3", "web-4"],
            5,
            ["Failed", "Succeeded", "Failed", "Skipped", "Skipped"],
            "HEALTH_CONSTRAINTS",
        ),
        (
            "CodeDeployDefault.OneAtATime",
            ["web-2"],
            5,
            ["Succeeded", "Failed", "Skipped", "Skipped", "Skipped"],
            "HEALTH_CONSTRAINTS",
        ),
        (
            "CodeDeployDefault.OneAtATime",
            ["web-5"],
            4,
            ["Succeeded", "Succeeded", "Succeeded", "Succeeded", "Failed"],
            None,
        ),
    ],
)
def test_validate_service_failures_follow_the_minimum_healthy_rules(
    fleet: Lab,
    tmp_path: Path,
    config: str,
    failing: list[str],
    exit_code: int,
    statuses: list[str],
    error: str | None,
) -> None:
    addresses = [fleet.host(name).address for name in failing]
    result = rollout(fleet, failing_validate(tmp_path, addresses), "--deployment-config", config)
    assert result.exit_code == exit_code, result.stderr
    assert list(result.statuses().values()) == statuses
    assert (result.document["errorInformation"] or {}).get("code") == error
    for name in (n for n in failing if result.statuses()[n] != "Skipped"):
        event = result.event(name, "ValidateService")
        assert event["status"] == "Failed"
        assert event["diagnostics"]["errorCode"] == "ScriptFailed"
        assert "failing on purpose" in event["diagnostics"]["logTail"]
    for name, status in result.statuses().items():
        if status == "Skipped":
            assert {e["status"] for e in result.target(name)["lifecycleEvents"]} == {"Skipped"}


def test_redeploying_the_same_revision_uploads_nothing(fleet: Lab, tmp_path: Path) -> None:
    bundle = hello_web(tmp_path)
    assert (
        rollout(fleet, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce").exit_code == 0
    )
    # Edited by hand on web-1 since: the redeploy puts the revision's file back.
    edited = fleet.host_path("web-1", "/srv/hello-web/www/index.html")
    shipped = edited.read_text()
    edited.write_text("edited by hand\n")
    again = rollout(fleet, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert again.exit_code == 0
    assert edited.read_text() == shipped
    from click.testing import CliRunner

    from orchestrator.cli.main import cli

    logs = CliRunner().invoke(
        cli, ["logs", again.document["deploymentId"], "--event", "DownloadBundle"]
    )
    assert logs.stdout.count("reused the bundle already on the host") == 5
    assert logs.stdout.count("linked the archive unpacked in") == 5  # not unpacked again
    installs = (
        CliRunner()
        .invoke(cli, ["logs", again.document["deploymentId"], "--event", "Install"])
        .stdout
    )
    # Unchanged files are kept, not removed and copied again; the edited one is replaced.
    assert installs.count("installed 0 file(s), kept 1 unchanged") == 4
    assert installs.count("installed 1 file(s), kept 0 unchanged") == 1
    assert "received the bundle" not in logs.stdout
    archives = sorted(group_root(fleet, "web-1").glob("*/deployment-archive/appspec.yml"))
    assert len(archives) == 2 and archives[0].stat().st_ino == archives[1].stat().st_ino
    # The old revision's ApplicationStop stopped the server that the new one started again.
    assert "stopped hello-web" in again.event("web-1", "ApplicationStop")["diagnostics"]["logTail"]


PERMISSIONS = """\
  - source: app/bin
    destination: /srv/linked/bin
permissions:
  - object: /srv/perm
    pattern: "**"
    mode: "750"
    type: [directory]
  - object: /srv/perm/bin
    pattern: "*.sh"
    mode: "700"
    owner: nobody
    type: [file]
"""


# With many destination directories too: Install batches its copies per directory.
@pytest.mark.parametrize("filler_directories", [0, 30])
def test_install_permissions_awkward_names_and_links(
    fleet: Lab, tmp_path: Path, filler_directories: int
) -> None:
    files = {
        "bin/run.sh": "echo run\n",
        "conf/it's a $file.txt": "quoted\n",
        "conf/sub/deep.txt": "d\n",
        "conf/-looks like an option": "dash\n",
    }
    files.update({f"many/d{i:02}/f.txt": f"{i}\n" for i in range(filler_directories)})
    bundle = script_bundle(tmp_path, "perm", {}, appspec_extra=PERMISSIONS, files=files)
    for host in HOSTS:
        # An ancestor that is a link to a directory is no conflict; the copy goes through it.
        fleet.host_path(host, "/srv/real").mkdir(parents=True)
        fleet.host_path(host, "/srv/linked").symlink_to("/srv/real")
    # On web-1 a destination is a link to a file elsewhere: replaced, never written through.
    victim = fleet.host_path("web-1", "/srv/victim.txt")
    victim.write_text("untouched\n")
    placed = fleet.host_path("web-1", "/srv/perm/conf/sub/deep.txt")
    placed.parent.mkdir(parents=True)
    placed.symlink_to("/srv/victim.txt")
    args = ("--deployment-config", "CodeDeployDefault.AllAtOnce")
    result = rollout(fleet, bundle, *args, "--file-exists-behavior", "OVERWRITE")
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "untouched\n"
    assert not placed.is_symlink() and placed.read_text() == "d\n"
    for round_ in ("first", "again"):
        for host in HOSTS:
            perm = fleet.host_path(host, "/srv/perm")
            assert (perm / "conf" / "it's a $file.txt").read_text() == "quoted\n"
            assert (perm / "conf" / "-looks like an option").read_text() == "dash\n"
            for i in range(filler_directories):
                assert (perm / "many" / f"d{i:02}" / "f.txt").read_text() == f"{i}\n"
            assert (fleet.host_path(host, "/srv/real/bin/run.sh")).read_text() == "echo run\n"
            assert fleet.host_path(host, "/srv/linked").is_symlink(), round_
            run_sh = (perm / "bin" / "run.sh").stat()
            assert (run_sh.st_mode & 0o777, run_sh.st_uid) == (0o700, 65534), round_
            for directory in ("bin", "conf", "conf/sub"):
                # web-1 had conf/sub before: permissions apply only to what the install made.
                expected = 0o755 if host == "web-1" and directory != "bin" else 0o750
                assert (perm / directory).stat().st_mode & 0o777 == expected, (round_, directory)
        # The second round removes what the first installed, and installs it again.
        if round_ == "first":
            assert rollout(fleet, bundle, *args).exit_code == 0
    cleanup = next(instructions(fleet, "web-2").glob("*-cleanup")).read_text().split("\n")
    assert "/srv/perm/conf/it's a $file.txt" in cleanup
    assert "/srv/real" not in cleanup and "/srv/linked" not in cleanup  # they were there before


def test_triggers_tell_their_receivers_and_a_dead_one_is_a_note(
    fleet: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_TOKEN", "t0k3n")
    with receiver() as (url, received):
        document = yaml.safe_load(fleet.inventory_path.read_text())
        document["applications"]["hello"]["deployment_groups"]["web"]["triggers"] = [
            {
                "name": "chat",
                "url": f"{url}/chat",
                "events": ["DeploymentStart", "DeploymentSuccess", "InstanceSuccess"],
                "headers": {"Authorization": "Bearer ${CHAT_TOKEN}"},
            },
            {"name": "gone", "url": "http://127.0.0.1:9/gone", "events": ["DeploymentSuccess"]},
        ]
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(document))
        result = rollout(
            fleet,
            hello_web(tmp_path),
            *("--deployment-config", "CodeDeployDefault.AllAtOnce"),
            inventory=inventory,
        )
    assert result.exit_code == 0, result.stderr
    assert received.events() == ["DeploymentStart", *["InstanceSuccess"] * 5, "DeploymentSuccess"]
    assert {headers["Authorization"] for _, headers, _ in received.posts} == {"Bearer t0k3n"}
    end = received.posts[-1][2]
    assert end["deploymentId"] == result.document["deploymentId"] and end["status"] == "SUCCEEDED"
    assert sorted(body["instanceId"] for _, _, body in received.posts[1:-1]) == HOSTS
    assert "note: trigger gone: DeploymentSuccess to http://127.0.0.1:9 failed" in result.stderr
    assert "t0k3n" not in result.stderr


def test_a_trickling_receiver_cannot_hold_the_process_past_its_deadline(
    small_lab: Lab, tmp_path: Path
) -> None:
    # A process of its own: a sender left running in a thread kept the process alive after the
    # rollout had printed its result, for as long as the receiver kept sending.
    with trickler() as (url, trickled):
        document = yaml.safe_load(small_lab.inventory_path.read_text())
        document["applications"]["hello"]["deployment_groups"]["web"]["triggers"] = [
            {"name": "slow", "url": f"{url}/slow?key=s3cret", "events": ["DeploymentSuccess"]}
        ]
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(document))
        args = ["-i", str(inventory), "rollout", "-a", "hello", "-g", "web"]
        args += ["-r", str(hello_web(tmp_path)), "--output", "json"]
        process = start_orchestrator(args, tmp_path / "run")
        try:
            code = process.wait(timeout=300)
            ended = time.monotonic()
        finally:
            process.kill()
        [arrived] = trickled.arrivals  # DeploymentSuccess: sent once the deployment has ended
    stderr = (tmp_path / "run" / "stderr").read_text()
    # From then on only the notifier's deadline (SEND_TIMEOUT for a last one) holds the process.
    assert ended - arrived < SEND_TIMEOUT + 15, f"exited {ended - arrived:.1f} s after: {stderr}"
    # The outcome is the deployment's: exit 0 and its JSON, the trigger a note.
    assert code == 0, stderr
    assert json.loads((tmp_path / "run" / "stdout").read_text())["status"] == "Succeeded"
    assert (
        f"note: trigger slow: DeploymentSuccess to {url} failed: no complete answer within "
        f"{SEND_TIMEOUT:g} s" in stderr
    )
    assert "s3cret" not in stderr


def test_a_minimum_two_hosts_can_never_keep_fails_without_contacting_them(
    small_lab: Lab, tmp_path: Path
) -> None:
    # ThreeQuarters of 2 hosts is 2: known from the selection, before any host is contacted.
    logins = {h.name: _logins(small_lab, h.name) for h in small_lab.hosts}
    result = rollout(small_lab, hello_web(tmp_path), "--deployment-config", "ThreeQuarters")
    assert result.exit_code == 5, result.stderr
    assert result.document["status"] == "Failed"
    assert result.document["errorInformation"]["code"] == "HEALTH_CONSTRAINTS_INVALID"
    assert set(result.statuses().values()) == {"Skipped"}
    for host in small_lab.hosts:
        root = small_lab.host_path(host.name, small_lab.deployment_root(host.name))
        assert not (root / "locks").exists()
        assert _logins(small_lab, host.name) == logins[host.name]


def _logins(lab: Lab, host: str) -> int:
    return (lab.host_dir(host) / "sshd.log").read_text().count("Accepted publickey")
