"""Secrets stay secret: a distinct secret planted in every place one can come from (the
controller's environment, a trigger's headers and URL, the environment hooks run with on the
host) appears in no output orchestrator makes (stdout, stderr, the JSON document, the NDJSON
events, the history store's bytes and every command that reads it, the host's logs and records),
and the files that hold deployment records are readable by their owner alone.

What a hook prints is the hook's own business (it lands in its log): the hooks here print none.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.hostproto.scripts import host_tools
from orchestrator.lab import toolbox
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.revisions import script_bundle
from tests.webhook_receiver import receiver

SECRETS = {
    # The controller's environment: one variable a header names, one nobody names.
    "header_variable": "s3cr3t-header-variable-6Hq2",
    "unrelated_variable": "s3cr3t-unrelated-variable-9Tz4",
    # A variable whose value would split a request (CR LF): refused, never shown.
    "split_variable": "s3cr3t-split-variable-4Jd6",
    # The inventory's trigger: a literal header value and a URL's query.
    "literal_header": "s3cr3t-literal-header-3Kp8",
    "url_query": "s3cr3t-url-query-2Bn7",
    "url_path": "s3cr3t-url-path-7Lx3",  # chat services put their token in the path
    # The environment the hooks run with on the host.
    "hook_environment": "s3cr3t-hook-environment-8Rc5",
}
EVENTS = ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "InstanceFailure"]
# The hooks look at their secret and print only whether they saw it; one fails on web-2.
SEES = 'case ${HOOK_SECRET:-} in s3cr3t-*) echo "hook secret present" ;; esac\n'
FAILS_ON_WEB_2 = 'case $SSH_CONNECTION in *" {address} "*) exit 3 ;; esac\n'


@pytest.fixture
def planted_lab(tmp_path: Path) -> Iterator[Lab]:
    """Two hosts whose sessions (and so hooks) have HOOK_SECRET in their environment: their sh
    is a wrapper that exports it before it runs the real one."""
    tools = toolbox.only(tmp_path / "bin", [*host_tools(), "timeout"])
    dash = shutil.which("dash")
    assert dash is not None
    (tools / "sh").unlink()
    (tools / "sh").write_text(
        f"#!{dash}\nHOOK_SECRET={SECRETS['hook_environment']}\nexport HOOK_SECRET\n"
        f'exec {dash} "$@"\n'
    )
    (tools / "sh").chmod(0o755)
    lab = start_lab(tmp_path / "lab", 2, session_path=tools)
    yield lab
    lab.down()


def _inventory(lab: Lab, path: Path, base: str, failing_base: str, redirecting_base: str) -> Path:
    data: dict[str, Any] = yaml.safe_load(lab.inventory_path.read_text())
    group = data["applications"]["hello"]["deployment_groups"]["web"]
    headers = {
        "Authorization": "Bearer ${ORCHESTRATOR_TEST_TOKEN}",
        "X-Api-Key": SECRETS["literal_header"],
    }
    query = f"?token={SECRETS['url_query']}"
    group["triggers"] = [
        {"name": "chat", "url": f"{base}/deploys{query}", "events": EVENTS, "headers": headers},
        # Answers 500: its failure is a note on stderr.
        {
            "name": "failing",
            "url": f"{failing_base}/services/{SECRETS['url_path']}{query}",
            "events": EVENTS,
            "headers": headers,
        },
        # Answers 302 to the first receiver's /stolen: not followed, the headers stay here.
        {
            "name": "redirected",
            "url": f"{redirecting_base}/deploys{query}",
            "events": EVENTS,
            "headers": headers,
        },
        # A value with CR LF: a note naming the header and the variable, and nothing sent.
        {
            "name": "split",
            "url": f"{base}/split",
            "events": EVENTS,
            "headers": {"X-Token": "${ORCHESTRATOR_TEST_SPLIT}"},
        },
        # A variable that is not set: a note, and nothing sent.
        {
            "name": "unset",
            "url": f"{base}/unset",
            "events": EVENTS,
            "headers": {"Authorization": "Bearer ${ORCHESTRATOR_TEST_UNSET}"},
        },
    ]
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def _leaks(name: str, data: bytes) -> list[str]:
    return [f"{key} in {name}" for key, secret in SECRETS.items() if secret.encode() in data]


def _files(top: Path) -> list[Path]:
    return [path for path in sorted(top.rglob("*")) if path.is_file() and not path.is_symlink()]


def test_no_planted_secret_reaches_any_output(planted_lab: Lab, tmp_path: Path) -> None:
    web2 = planted_lab.host("web-2").address
    bundle = script_bundle(
        tmp_path,
        "secrets",
        {"BeforeInstall": SEES, "ValidateService": SEES + FAILS_ON_WEB_2.format(address=web2)},
    )
    state = tmp_path / "state"
    events = tmp_path / "events.ndjson"
    env = {
        **os.environ,
        "ORCHESTRATOR_TEST_TOKEN": SECRETS["header_variable"],
        "ORCHESTRATOR_TEST_UNRELATED": SECRETS["unrelated_variable"],
        "ORCHESTRATOR_TEST_SPLIT": f"{SECRETS['split_variable']}\r\nX-Injected: 1",
        "ORCHESTRATOR_CACHE": str(tmp_path / "cache"),
    }
    env.pop("ORCHESTRATOR_TEST_UNSET", None)
    with (
        receiver() as (base, received),
        receiver(500) as (failing_base, _),
        receiver(302, headers={"Location": f"{base}/stolen"}) as (redirecting_base, redirected),
    ):
        inventory = _inventory(
            planted_lab, tmp_path / "inventory.yaml", base, failing_base, redirecting_base
        )
        common = ["-i", str(inventory), "--state", str(state)]
        run = ["rollout", "-a", "hello", "-g", "web", "-r", str(bundle)]
        deployed = _cli([*common, *run, "--output", "json", "--events", str(events)], env)
    assert deployed.returncode in (4, 5), deployed.stderr.decode()
    # The planted secrets were where they should be: sent to the receiver, seen by the hooks.
    sent = [
        {name.lower(): value for name, value in headers.items()}
        for path, headers, _ in received.posts
        if path == f"/deploys?token={SECRETS['url_query']}"
    ]
    assert sent
    assert all(h["authorization"] == f"Bearer {SECRETS['header_variable']}" for h in sent)
    assert all(h["x-api-key"] == SECRETS["literal_header"] for h in sent)
    stderr = deployed.stderr.decode()
    assert "trigger failing" in stderr
    assert "trigger redirected" in stderr
    assert "redirects are not followed" in stderr
    assert redirected.posts  # the redirecting receiver was sent the notifications ...
    assert not [req for req in received.requests if req[1].startswith(("/stolen", "/split"))]
    assert "ORCHESTRATOR_TEST_SPLIT" in stderr  # ... the split value is named, not shown
    assert "${ORCHESTRATOR_TEST_UNSET} is not set" in stderr
    deployment_id = yaml.safe_load(deployed.stdout)["deploymentId"]

    outputs: dict[str, bytes] = {
        "rollout stdout": deployed.stdout,
        "rollout stderr": deployed.stderr,
        "NDJSON events": events.read_bytes(),
    }
    for args in (
        ["status", deployment_id],
        ["status", deployment_id, "--output", "json"],
        ["history"],
        ["history", "--output", "json"],
        ["logs", deployment_id],
        ["hosts", "-a", "hello", "-g", "web", "--check"],
        ["plan", "-a", "hello", "-g", "web", "-r", str(bundle)],
        ["validate", "-r", str(bundle)],
    ):
        done = _cli([*common, *args], env)
        assert done.returncode in (0, 4, 5), (args, done.stderr.decode())
        outputs[f"{' '.join(args[:2])} stdout"] = done.stdout
        outputs[f"{' '.join(args[:2])} stderr"] = done.stderr
    assert b"hook secret present" in outputs[f"logs {deployment_id} stdout"]
    for path in _files(state):
        outputs[f"state file {path.name}"] = path.read_bytes()
    roots = [
        planted_lab.host_path(host.name, planted_lab.deployment_root(host.name))
        for host in planted_lab.hosts
    ]
    host_files = [path for root in roots for path in _files(root)]
    assert any(path.name == "scripts.log" for path in host_files)
    for path in host_files:
        if "deployment-archive" not in path.parts:  # the bundle: what the operator sent
            outputs[f"host file {path}"] = path.read_bytes()
    assert [leak for name, data in outputs.items() for leak in _leaks(name, data)] == []

    # The records themselves are their owner's alone, on the controller and on the hosts.
    readable = [
        f"{path} {stat.S_IMODE(path.stat().st_mode):o}"
        for path in [state, *_files(state), *roots]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    assert readable == []
