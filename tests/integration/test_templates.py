"""Per-host templates on a real fleet: rendered on the controller from each host's vars,
installed and permissioned like files, cleaned up by the next revision, the shared bundle still
one upload; an undefined variable stops everything before a host is contacted."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from tests.integration.helpers import rollout
from tests.integration.revisions import hello_web

CONF = "/srv/hello-conf/app.conf"
TEMPLATE = (
    "# {{ group.application }}/{{ group.name }} on {{ host.name }} ({{ host.zone }})\n"
    "listen = {{ host.address }}:{{ http_port }}\n"
    "deployment = {{ deployment.id }}\n"
)


def _templated(tmp_path: Path, name: str = "templated", text: str = TEMPLATE) -> Path:
    bundle = hello_web(tmp_path, name)
    (bundle / "config").mkdir()
    (bundle / "config" / "app.conf.j2").write_text(text)
    appspec = bundle / "appspec.yml"
    appspec.write_text(
        appspec.read_text().replace(
            "permissions:\n",
            "templates:\n"
            f"  - {{source: config/app.conf.j2, destination: {CONF}}}\n"
            "permissions:\n"
            "  - {object: /srv/hello-conf, pattern: '*.conf', type: [file], mode: '600'}\n",
        )
    )
    return bundle


def _with_vars(lab: Lab) -> None:
    document = yaml.safe_load(lab.inventory_path.read_text())
    for index, name in enumerate(document["hosts"], 1):
        document["hosts"][name]["vars"] = {"http_port": 9000 + index}
    lab.inventory_path.write_text(yaml.safe_dump(document))


def test_each_host_gets_its_own_rendering_installed_like_a_file(fleet: Lab, tmp_path: Path) -> None:
    _with_vars(fleet)
    bundle = _templated(tmp_path)
    result = rollout(fleet, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert result.exit_code == 0, result.stderr
    deployment_id = result.document["deploymentId"]
    zones = {
        name: spec["zone"]
        for name, spec in yaml.safe_load(fleet.inventory_path.read_text())["hosts"].items()
    }
    for index, host in enumerate(fleet.hosts, 1):
        conf = fleet.host_path(host.name, CONF)
        assert conf.read_text() == (
            f"# hello/web on {host.name} ({zones[host.name]})\n"
            f"listen = {host.address}:{9000 + index}\n"
            f"deployment = {deployment_id}\n"
        )
        assert oct(os.stat(conf).st_mode & 0o777) == "0o600"

    again = rollout(fleet, bundle, "--deployment-config", "CodeDeployDefault.AllAtOnce")
    assert again.exit_code == 0, again.stderr
    logs = CliRunner().invoke(
        cli, ["logs", again.document["deploymentId"], "--event", "DownloadBundle"]
    )
    assert logs.stdout.count("reused the bundle already on the host") == 5  # one upload
    assert again.document["deploymentId"] in fleet.host_path("web-1", CONF).read_text()

    without = rollout(fleet, hello_web(tmp_path, "plain"))
    assert without.exit_code == 0, without.stderr
    assert not fleet.host_path("web-1", CONF).exists()  # cleaned up as a file would be


def test_an_undefined_variable_names_template_line_and_host_and_touches_nothing(
    small_lab: Lab, tmp_path: Path
) -> None:
    bundle = _templated(tmp_path, text="ok = 1\nport = {{ http_port }}\n")
    # No vars in the lab's inventory: http_port is undefined on every host.
    checked = CliRunner().invoke(
        cli, ["-i", str(small_lab.inventory_path), "validate", "-r", str(bundle)]
    )
    assert checked.exit_code == 3
    assert "config/app.conf.j2:2" in checked.stderr and "host web-1" in checked.stderr
    assert "'http_port' is undefined" in checked.stderr
    planned = CliRunner().invoke(
        cli,
        ["-i", str(small_lab.inventory_path), "plan", "-a", "hello", "-g", "web",
         "-r", str(bundle)],
    )  # fmt: skip
    assert planned.exit_code == 3 and "config/app.conf.j2:2" in planned.stderr
    deployed = CliRunner().invoke(
        cli,
        ["-i", str(small_lab.inventory_path), "rollout", "-a", "hello", "-g", "web",
         "-r", str(bundle)],
    )  # fmt: skip
    assert deployed.exit_code == 3, deployed.output
    assert "config/app.conf.j2:2" in deployed.stderr
    assert not small_lab.host_path("web-1", "/srv/hello-web").exists()  # no host touched
