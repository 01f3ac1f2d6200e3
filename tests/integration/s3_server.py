"""A real S3-compatible server on loopback for the bundle-store tests: moto's server mode (the
``moto[server]`` package of the test extra), started once per test session on a free port.

Lab hosts share the machine's network: they fetch from it at 127.0.0.1 like the controller. Its
credentials are made up (moto takes any): tests put them in the environment, as an operator's
would be, and check that they appear nowhere.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.haproxy import free_port
from tests.integration.services import poll_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Made-up credentials, recognisable wherever they might leak.
ACCESS_KEY = "AKIAORCHESTRATORTEST"
SECRET_KEY = "orchestrator/test/secret/key/never/shown/0123"
REGION = "us-east-1"
INSTALL_HINT = (
    "install the test extra: pip install -c .ci/constraints.txt -e '.[test]' (moto[server])"
)
READY_SECONDS = 60.0


def aws_environment(directory: Path) -> dict[str, str]:
    """The environment an operator's credentials would come from, and no config of this
    machine's (``~/.aws``) in the way."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self) -> S3Client:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        ).client("s3", endpoint_url=self.endpoint)

    def new_bucket(self, name: str, *, versioned: bool = False) -> str:
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an error is an answer too

    if poll_until(answers, process, READY_SECONDS) is None:
        process.kill()
        raise RuntimeError(f"moto's server did not start: {log.read_text()[-2000:]}")


def start_s3_server(directory: Path) -> S3Server:
    if importlib.util.find_spec("moto") is None:
        # Never a skip: CI must run these tests.
        pytest.fail(f"moto is not installed: {INSTALL_HINT}", pytrace=False)
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_ready(process, endpoint, log)
    return S3Server(endpoint, process)


def stop_s3_server(server: S3Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
