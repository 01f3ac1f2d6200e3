"""Revisions from S3 (``s3://bucket/key``, with a version id), as CodeDeploy's: downloaded by the
controller from a real S3-compatible server (moto's, on loopback), then read and checked like a
local archive, deployed to real lab hosts, and recorded by bucket, key and version. A key or
version that is not there, or an archive with an unsafe entry, is exit 3 naming it, with
nothing contacted."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.lab.fleet import Lab
from tests.integration.conftest import start_lab
from tests.integration.helpers import rollout
from tests.integration.revisions import script_bundle
from tests.integration.s3_server import (
    ACCESS_KEY,
    SECRET_KEY,
    S3Server,
    aws_environment,
)

ALL_AT_ONCE = ("--deployment-config", "CodeDeployDefault.AllAtOnce")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    fleet = start_lab(tmp_path / "lab", 2)
    yield fleet
    fleet.down()


@pytest.fixture(autouse=True)
def _credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Server) -> None:
    for name, value in aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    # boto3's own setting for an S3-compatible store's endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)


def tar_of(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(directory, arcname=".")
    return buffer.getvalue()


def put(s3: S3Server, bucket: str, key: str, data: bytes) -> str:
    return str(s3.client().put_object(Bucket=bucket, Key=key, Body=data)["VersionId"])


def test_an_s3_revision_and_its_versions_deploy(lab: Lab, s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket("revisions-a", versioned=True)
    hooks = {"AfterInstall": "echo installed\n"}
    one = put(s3, bucket, "app.tgz", tar_of(script_bundle(tmp_path / "1", "one", hooks)))
    put(s3, bucket, "app.tgz", tar_of(script_bundle(tmp_path / "2", "two", hooks)))

    latest = rollout(lab, f"s3://{bucket}/app.tgz", *ALL_AT_ONCE)
    assert latest.exit_code == 0, (latest.stderr, latest.document)
    assert lab.host_path("web-1", "/srv/one/index.txt").exists() is False
    assert lab.host_path("web-1", "/srv/two/index.txt").read_text() == "two\n"
    assert latest.document["revision"]["source"] == f"s3://{bucket}/app.tgz"
    assert latest.document["revision"]["type"] == "tgz"

    versioned = rollout(lab, f"s3://{bucket}/app.tgz?versionId={one}", *ALL_AT_ONCE)
    assert versioned.exit_code == 0, (versioned.stderr, versioned.document)
    assert lab.host_path("web-2", "/srv/one/index.txt").read_text() == "one\n"
    assert versioned.document["revision"]["source"] == f"s3://{bucket}/app.tgz?versionId={one}"

    # The same, as the command line's option; the key says nothing of the type: it is given.
    seven = put(s3, bucket, "build-7", tar_of(script_bundle(tmp_path / "3", "three", hooks)))
    spec = f"s3://{bucket}/build-7?bundleType=tgz"
    given = rollout(lab, spec, "--revision-version", seven, *ALL_AT_ONCE)
    assert given.exit_code == 0, (given.stderr, given.document)
    source = f"s3://{bucket}/build-7?versionId={seven}&bundleType=tgz"
    assert given.document["revision"]["source"] == source

    history = CliRunner().invoke(cli, ["history", "--output", "json"])
    for secret in (ACCESS_KEY, SECRET_KEY):
        assert secret not in history.stdout and secret not in latest.stderr


def test_what_cannot_be_read_from_s3_is_exit_3_naming_it(
    lab: Lab, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket("revisions-b", versioned=True)
    hooks = {"AfterInstall": "echo installed\n"}
    put(s3, bucket, "app.tgz", tar_of(script_bundle(tmp_path / "1", "one", hooks)))
    unsafe = io.BytesIO()
    with tarfile.open(fileobj=unsafe, mode="w") as archive:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"no\n"))
    put(s3, bucket, "unsafe.tar", unsafe.getvalue())
    cases = {
        f"s3://{bucket}/missing.tgz": "NoSuchKey",
        f"s3://{bucket}/app.tgz?versionId=no-such-version": "",
        "s3://no-such-bucket-9/app.tgz": "NoSuchBucket",
        f"s3://{bucket}/unsafe.tar": "../escape.txt",
        f"s3://{bucket}/app": "?bundleType=tar|tgz|zip",
    }
    inventory = str(lab.inventory_path)
    for spec, said in cases.items():
        args = ["-i", inventory, "rollout", "-a", "hello", "-g", "web", "-r", spec]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 3, (spec, result.output)
        assert f"error: {spec}" in result.stderr and said in result.stderr, result.stderr
        assert ACCESS_KEY not in result.output and SECRET_KEY not in result.output
    for host in ("web-1", "web-2"):
        assert not lab.host_path(host, "/opt/orchestrator/deployment-root").exists()
    history = CliRunner().invoke(cli, ["history", "--output", "json"])
    assert json.loads(history.stdout) == [], history.output
