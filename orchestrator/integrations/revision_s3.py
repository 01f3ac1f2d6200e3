"""Revisions from S3: ``s3://bucket/key`` with ``?versionId=`` and ``?bundleType=`` (CodeDeploy's
S3 revision: bucket, key, version, bundle type), downloaded by the controller with boto3 into
the revision's work directory, then read and checked like a local archive (``revision.py``).

The credentials are boto3's default chain's, and so is the endpoint of an S3-compatible store
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, or the profile's ``endpoint_url``). The
revision is recorded as its URL: bucket, key, version and type, never a credential.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.errors import RevisionError
from orchestrator.integrations.bundle_store import INSTALL_HINT, new_s3_client, store_reason
from orchestrator.models.bundle_store import BundleType, parse_s3_url

CHUNK = 1024 * 1024


def download_revision(spec: str, workdir: Path) -> tuple[BundleType, Path]:
    """The archive ``spec`` names, downloaded into ``workdir``: its type and path
    (``RevisionError``, exit 3, naming the bucket and key, when it cannot be)."""
    try:
        location = parse_s3_url(spec, revision=True)
    except ValueError as exc:
        raise RevisionError.single(spec, str(exc)) from exc
    name = location.url()
    kind = location.kind()
    if not location.key or kind is None:
        raise RevisionError.single(
            name,
            "an S3 revision names an object whose key ends in .tar, .tar.gz, .tgz or .zip, or "
            "says its type with ?bundleType=tar|tgz|zip",
        )
    target = workdir / f"s3-revision.{'tar.gz' if kind == 'tgz' else kind}"
    try:
        client = new_s3_client()
        if location.version:
            answer = client.get_object(
                Bucket=location.bucket, Key=location.key, VersionId=location.version
            )
        else:
            answer = client.get_object(Bucket=location.bucket, Key=location.key)
        with answer["Body"] as body, target.open("wb") as out:
            shutil.copyfileobj(body, out, CHUNK)
    except ImportError as exc:
        raise RevisionError.single(name, f"an S3 revision needs boto3: {INSTALL_HINT}") from exc
    except OSError as exc:
        raise RevisionError.single(name, f"cannot be written to {workdir}: {exc}") from exc
    except Exception as exc:  # boto3's errors: no such bucket, key or version, no access
        raise RevisionError.single(name, f"cannot be downloaded: {store_reason(exc)}") from exc
    return kind, target
