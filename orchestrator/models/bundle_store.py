"""Where hosts fetch bundles from instead of having them pushed over SSH: a group's
``bundle_store`` (README: "Bundle store"), and the ``s3://`` URLs it and revisions are named by.

Pure: the inventory's keys, URL parsing and key naming. The S3 client is
``integrations/bundle_store.py``'s; the hosts' side is ``hostproto/programs/download.sh``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator.models.webhook_text import url_problem

# S3's rules for a bucket name, with the upper case and underscores of older buckets and of
# S3-compatible stores allowed: the store refuses what it does not take, by name.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
# SigV4 presigned URLs live at most seven days.
MAX_URL_EXPIRY = 7 * 24 * 3600
DEFAULT_URL_EXPIRY = 3600
Fallback = Literal["push", "fail"]


BundleType = Literal["tar", "tgz", "zip"]
BUNDLE_TYPES: tuple[BundleType, ...] = ("tar", "tgz", "zip")
_REVISION_QUERY = {"versionId", "bundleType"}


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/key``: a bucket and a key (a prefix, for a bundle store); for a revision, a
    version and a bundle type (CodeDeploy's S3 revision)."""

    bucket: str
    key: str
    version: str | None = None
    bundle_type: BundleType | None = None

    def url(self) -> str:
        """The location as written, its version and type included: what the history records."""
        base = f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"
        query = [f"versionId={self.version}"] if self.version else []
        query += [f"bundleType={self.bundle_type}"] if self.bundle_type else []
        return f"{base}?{'&'.join(query)}" if query else base

    def kind(self) -> BundleType | None:
        """The bundle type given, else the key's suffix's; None when neither says."""
        lower = self.key.lower()
        if self.bundle_type is not None:
            return self.bundle_type
        if lower.endswith((".tar.gz", ".tgz")):
            return "tgz"
        return "tar" if lower.endswith(".tar") else "zip" if lower.endswith(".zip") else None


def s3_problem(url: str) -> str | None:
    """Why ``url`` is no ``s3://bucket[/key]`` URL, or None."""
    try:
        parse_s3_url(url)
    except ValueError as exc:
        return str(exc)
    return None


def parse_s3_url(url: str, *, revision: bool = False) -> S3Location:
    """``s3://bucket[/key]``, and for a ``revision`` ``?versionId=V&bundleType=tar|tgz|zip``
    (either, both or none); ``ValueError`` saying what is wrong."""
    if any(c.isspace() for c in url):
        raise ValueError("an s3:// URL holds no spaces (percent-encoding is not read either)")
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError("not an s3:// URL: it is written s3://BUCKET/KEY")
    if parts.username is not None or parts.password is not None or parts.port is not None:
        raise ValueError("an s3:// URL names a bucket, never credentials or a port")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"'{bucket}' is not a bucket name (3-63 letters, digits, '.', '-', '_')")
    query = parse_qs(parts.query, keep_blank_values=True)
    if query and (
        not revision
        or not set(query) <= _REVISION_QUERY
        or any(len(values) != 1 for values in query.values())
    ):
        allowed = "only ?versionId=VERSION&bundleType=tar|tgz|zip" if revision else "no query"
        raise ValueError(f"an s3:// URL here takes {allowed}")
    version = query.get("versionId", [None])[0]
    if version == "":
        raise ValueError("?versionId= names no version")
    kind = query.get("bundleType", [None])[0]
    if kind is not None and kind not in BUNDLE_TYPES:
        raise ValueError(f"bundleType '{kind}' is not one of {', '.join(BUNDLE_TYPES)}")
    if parts.fragment:
        raise ValueError("an s3:// URL has no #fragment")
    key = parts.path.lstrip("/")
    if "//" in key or any(part in (".", "..") for part in key.split("/")):
        raise ValueError("an S3 key here has no empty, '.' or '..' parts")
    bundle_type = next((known for known in BUNDLE_TYPES if known == kind), None)
    return S3Location(bucket, key, version, bundle_type)


def with_version(spec: str, version: str) -> str:
    """An S3 revision's URL with ``?versionId=version`` (``--revision-version``)."""
    location = parse_s3_url(spec, revision=True)
    if location.version is not None and location.version != version:
        raise ValueError(f"{spec} names version {location.version} already")
    return S3Location(location.bucket, location.key, version, location.bundle_type).url()


def bundle_key(prefix: str, sha256: str) -> str:
    """The key a bundle is stored under: ``<prefix>/<sha256>.tar`` (one object per content,
    whatever revision or deployment it came from)."""
    prefix = prefix.strip("/")
    return f"{prefix}/{sha256}.tar" if prefix else f"{sha256}.tar"


def _s3_url(url: str) -> str:
    problem = s3_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` is no endpoint of an S3-compatible store, or None."""
    try:
        _endpoint(url)
    except ValueError as exc:
        return str(exc)
    return None


def _endpoint(url: str) -> str:
    if "@" in urlsplit(url).netloc:
        # Credentials come from the AWS chain only: never from a file the history may quote.
        raise ValueError("an endpoint URL holds no credentials (they come from AWS's sources)")
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("an endpoint URL has no query or fragment")
    return url


S3Url = Annotated[str, AfterValidator(_s3_url)]
EndpointUrl = Annotated[str, AfterValidator(_endpoint)]


class BundleStoreSpec(BaseModel):
    """A group's ``bundle_store`` (or the command line's ``--bundle-store``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: S3Url  # s3://bucket/prefix
    endpoint_url: EndpointUrl | None = None  # an S3-compatible store's; None: AWS's own
    region: str | None = Field(default=None, min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")
    fallback: Fallback = "fail"  # a host that cannot fetch it: fail DownloadBundle, or push
    url_expiry: int = Field(default=DEFAULT_URL_EXPIRY, ge=60, le=MAX_URL_EXPIRY)

    @property
    def location(self) -> S3Location:
        return parse_s3_url(self.url)

    def described(self) -> str:
        """The store as messages name it (no secret is part of it)."""
        endpoint = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"{self.url}{endpoint}"
