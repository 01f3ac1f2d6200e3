"""Bundles through an S3-compatible store: real lab hosts fetch the bundle with curl from a real
server (moto's server mode on loopback) through presigned URLs.

The bundle is uploaded once (keyed by its sha256) and not again when it is there or when every
host holds it; a host without curl or wget fails DownloadBundle, or has the bundle pushed when
the group allows it; an object that is not the bundle is refused; a bucket that is not there
ends the command with exit 8 before any host is contacted; and neither the presigned URL's query
nor the AWS credentials appear in any output, record or host file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator import api
from orchestrator.cli.main import cli
from orchestrator.hostproto.scripts import host_tools
from orchestrator.lab import toolbox
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.helpers import RolloutResult, rollout
from tests.integration.revisions import script_bundle
from tests.integration.s3_server import (
    ACCESS_KEY,
    SECRET_KEY,
    S3Server,
    aws_environment,
)

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")
ROOT = "/opt/orchestrator/deployment-root"
# What a presigned URL's query holds (SigV4), and the credentials: never shown or kept.
SECRETS = (ACCESS_KEY, SECRET_KEY, "X-Amz-Signature", "X-Amz-Credential", "Signature=")


@pytest.fixture(autouse=True)
def _credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)


def with_store(lab: Lab, directory: Path, store: dict[str, Any], group: str = "web") -> Path:
    """The lab's inventory with ``store`` as the group's bundle_store."""
    document = yaml.safe_load(lab.inventory_path.read_text())
    document["applications"]["hello"]["deployment_groups"][group]["bundle_store"] = store
    path = directory / f"inventory-{group}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def assert_no_secret(*places: str | bytes | Path) -> None:
    for place in places:
        if isinstance(place, Path):
            files = [p for p in place.rglob("*") if p.is_file()] if place.is_dir() else [place]
            for file in files:
                data = file.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, f"{secret} in {file}"
            continue
        text = place if isinstance(place, str) else place.decode(errors="replace")
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {text[:2000]}"


def notices(result: RolloutResult) -> list[str]:
    return [event["message"] for event in result.events if event.get("type") == "Notice"]


def download_output(result: RolloutResult, host: str) -> str:
    """What DownloadBundle printed on ``host`` (``orchestrator logs``)."""
    deployment_id = result.document["deploymentId"]
    args = ["logs", deployment_id, "--event", "DownloadBundle", "--host", host]
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert_no_secret(shown.output)
    return shown.stdout


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    fleet = start_lab(tmp_path / "lab", 3)
    yield fleet
    fleet.down()


def test_a_rollout_through_the_store_uploads_once_and_hosts_fetch_it(
    lab: Lab, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket("bundles-once")
    store = {"url": f"s3://{bucket}/deploys", "endpoint_url": s3.endpoint}
    inventory = with_store(lab, tmp_path, store)
    bundle = script_bundle(tmp_path / "v1", "app", {"AfterInstall": "echo installed\n"})

    first = rollout(lab, bundle, *ALL_AT_ONCE, inventory=inventory)
    assert first.exit_code == 0, (first.stderr, first.document)
    sha = first.document["revision"]["sha256"]
    assert s3.keys(bucket) == [f"deploys/{sha}.tar"]
    uploaded = [n for n in notices(first) if "uploaded the bundle to" in n]
    assert len(uploaded) == 1, notices(first)
    assert f"s3://{bucket}/deploys/{sha}.tar" in uploaded[0]
    for host in ("web-1", "web-2", "web-3"):
        assert "fetched the bundle from the bundle store with curl" in download_output(first, host)
        assert lab.host_path(host, "/srv/app/index.txt").read_text() == "app\n"
    modified = s3.client().head_object(Bucket=bucket, Key=f"deploys/{sha}.tar")["LastModified"]

    # The same revision again: every host holds it, nothing is uploaded or fetched.
    again = rollout(lab, bundle, *ALL_AT_ONCE, inventory=inventory)
    assert again.exit_code == 0, (again.stderr, again.document)
    assert any("every host holds the bundle: nothing uploaded" in n for n in notices(again))
    assert "reused the bundle already on the host" in download_output(again, "web-1")

    # Another group of the same hosts (the library this time): the hosts lack it under that
    # group, the store has it: nothing is uploaded, every host fetches it.
    zonal = with_store(lab, tmp_path, store, group="web-zonal")
    # (its files are the other group's: OVERWRITE)
    options = api.DeployOptions(file_exists_behavior="OVERWRITE")
    outcome = api.deploy(zonal, "hello", "web-zonal", str(bundle), options=options)
    assert outcome.deployment.status == "Succeeded", outcome.deployment.to_document()
    fetched = outcome.deployment.targets["web-2"].events[1]
    assert fetched.name == "DownloadBundle" and "with curl" in fetched.output, fetched
    head = s3.client().head_object(Bucket=bucket, Key=f"deploys/{sha}.tar")
    assert head["LastModified"] == modified
    assert head["Metadata"] == {"sha256": sha}
    assert s3.keys(bucket) == [f"deploys/{sha}.tar"]

    state = Path(str(tmp_path / "state"))
    events = (lab.directory / "events.ndjson").read_text()
    documents = json.dumps([first.document, again.document, outcome.deployment.to_document()])
    assert_no_secret(documents, first.stderr, again.stderr, events, state, lab.directory)


def test_a_host_without_curl_or_wget_fails_or_gets_the_bundle_pushed(
    s3: S3Server, tmp_path: Path
) -> None:
    assert not {"curl", "wget"} & set(host_tools())
    bare = start_lab(tmp_path / "lab", 1, session_path=toolbox.only(tmp_path / "bin", host_tools()))
    try:
        bucket = s3.new_bucket("bundles-bare")
        store = {"url": f"s3://{bucket}/p", "endpoint_url": s3.endpoint}
        bundle = script_bundle(tmp_path / "v1", "app", {"AfterInstall": "echo installed\n"})
        failed = rollout(bare, bundle, inventory=with_store(bare, tmp_path, store))
        assert failed.exit_code == 5, (failed.stderr, failed.document)
        event = failed.event("web-1", "DownloadBundle")
        assert event["status"] == "Failed"
        assert "neither curl nor wget" in event["diagnostics"]["message"]
        assert f"s3://{bucket}/p/" in event["diagnostics"]["message"]

        pushed_store = {**store, "fallback": "push"}
        pushed = rollout(bare, bundle, inventory=with_store(bare, tmp_path, pushed_store))
        assert pushed.exit_code == 0, (pushed.stderr, pushed.document)
        event = pushed.event("web-1", "DownloadBundle")
        assert "received the bundle" in download_output(pushed, "web-1")
        assert any("pushed over SSH instead" in warning for warning in event["warnings"])
        assert "pushed over SSH instead" in pushed.stderr
        assert bare.host_path("web-1", "/srv/app/index.txt").read_text() == "app\n"
        assert_no_secret(failed.stderr, pushed.stderr, bare.directory)
    finally:
        bare.down()


def test_an_object_that_is_not_the_bundle_is_refused(
    lab: Lab, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket("bundles-tampered")
    store = {"url": f"s3://{bucket}/t", "endpoint_url": s3.endpoint}
    bundle = script_bundle(tmp_path / "v1", "app", {"AfterInstall": "echo installed\n"})
    built = api.load_revision(str(bundle))
    data = bytearray(built.tar_path.read_bytes())
    data[600] ^= 0xFF  # same size, same recorded digest, other bytes: the upload is skipped
    s3.client().put_object(
        Bucket=bucket,
        Key=f"t/{built.sha256}.tar",
        Body=bytes(data),
        Metadata={"sha256": built.sha256},
    )
    result = rollout(lab, bundle, *ALL_AT_ONCE, inventory=with_store(lab, tmp_path, store))
    assert result.exit_code == 5, (result.stderr, result.document)
    assert any("the bundle is already in" in n for n in notices(result))
    for host in ("web-1", "web-2", "web-3"):
        message = result.event(host, "DownloadBundle")["diagnostics"]["message"]
        assert "the bundle fetched from the bundle store is not this deployment's" in message
        assert not lab.host_path(host, "/srv/app/index.txt").exists()


def test_a_missing_bucket_or_a_dead_endpoint_exits_8_before_any_host(
    lab: Lab, s3: S3Server, tmp_path: Path
) -> None:
    bundle = script_bundle(tmp_path / "v1", "app", {"AfterInstall": "echo installed\n"})
    cases = {
        "no-such-bucket": {"url": "s3://no-such-bucket/p", "endpoint_url": s3.endpoint},
        "dead endpoint": {"url": "s3://any-bucket/p", "endpoint_url": "http://127.0.0.1:9"},
    }
    for name, store in cases.items():
        inventory = with_store(lab, tmp_path, store)
        args = ["-i", str(inventory), "rollout", "-a", "hello", "-g", "web", "-r", str(bundle)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 8, (name, result.output)
        assert f"the bundle store {store['url']} at {store['endpoint_url']}" in result.stderr
        assert_no_secret(result.output)
    for host in ("web-1", "web-2", "web-3"):
        assert not lab.host_path(host, ROOT).exists(), host
    history = CliRunner().invoke(cli, ["history", "--output", "json"])
    assert history.exit_code == 0 and json.loads(history.stdout) == [], history.output


def test_the_command_lines_store_and_its_usage_errors(
    lab: Lab, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket("bundles-cli")
    bundle = script_bundle(tmp_path / "v1", "app", {"AfterInstall": "echo installed\n"})
    options = ("--bundle-store", f"s3://{bucket}/cli", "--bundle-store-endpoint", s3.endpoint)
    result = rollout(lab, bundle, *ALL_AT_ONCE, *options)
    assert result.exit_code == 0, (result.stderr, result.document)
    assert s3.keys(bucket) == [f"cli/{result.document['revision']['sha256']}.tar"]
    args = ["-i", str(lab.inventory_path), "rollout", "-a", "hello", "-g", "web"]
    bad = CliRunner().invoke(cli, [*args, "-r", str(bundle), "--bundle-store", "https://e.com/x"])
    assert bad.exit_code == 2 and "not an s3:// URL" in bad.stderr, bad.output
