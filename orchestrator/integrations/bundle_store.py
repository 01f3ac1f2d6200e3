"""A bundle store in S3 or an S3-compatible service (boto3): the controller uploads each bundle
once, keyed by its sha256, and hands hosts presigned GET URLs to fetch it with.

Credentials come from boto3's default chain only (the environment, a profile, the config and
credentials files, an instance role): nothing here takes or records one, and no message quotes
one. A presigned URL's query string is a credential too: it goes to a host on its stdin
(``engine/bundles.py``), never into a message or a record.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import BundleStoreError
from orchestrator.models.bundle_store import BundleStoreSpec, bundle_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INSTALL_HINT = "install boto3 (pip install 'orchestrator[s3]')"
SHA256_METADATA = "sha256"  # the object's x-amz-meta-sha256: the bundle's digest
# One connection's worth of retries: a store that does not answer fails the command quickly.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


def store_reason(exc: BaseException) -> str:
    """What went wrong, as the store or boto3 said it, without a credential: the HTTP status
    and the store's error code for a refusal, boto3's message for the rest (it names the
    endpoint, never a key or a signature)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or "error"
        message = error.get("Message")
        if str(code) == str(status) and message:  # a HEAD's error has no body: no code
            return f"{status} {message}"
        said = f"{status} {code}" if status else str(code)
        return f"{said} ({message})" if message and message != code else said
    return str(exc) or type(exc).__name__


def new_s3_client(endpoint_url: str | None = None, region: str | None = None) -> S3Client:
    """A boto3 S3 client with the default credential chain; ``ImportError`` without boto3.
    Without ``endpoint_url``, boto3's own settings name one (``AWS_ENDPOINT_URL_S3``)."""
    import boto3  # noqa: PLC0415 - an optional dependency, for those who use S3
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        signature_version="s3v4",
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": 3, "mode": "standard"},
        # An S3-compatible store is reached by its address: the bucket in the path.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


class S3BundleStore:
    """The store a ``BundleStoreSpec`` names (``engine.bundles.BundleStore``)."""

    def __init__(self, spec: BundleStoreSpec) -> None:
        self.spec = spec
        self.location = spec.location
        self.fallback_push = spec.fallback == "push"
        self._client: S3Client | None = None
        self._lock = threading.Lock()  # the client is made once, from whichever thread is first

    def described(self) -> str:
        return self.spec.described()

    def key(self, sha256: str) -> str:
        return bundle_key(self.location.key, sha256)

    def object_url(self, sha256: str) -> str:
        return f"s3://{self.location.bucket}/{self.key(sha256)}"

    def _error(self, doing: str, exc: BaseException) -> BundleStoreError:
        return BundleStoreError(f"the bundle store {self.described()} {doing}: {store_reason(exc)}")

    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> S3Client:
        try:
            return new_s3_client(self.spec.endpoint_url, self.spec.region)
        except ImportError as exc:
            raise BundleStoreError(
                f"the bundle store {self.described()} needs boto3: {INSTALL_HINT}"
            ) from exc
        except Exception as exc:  # a profile or region boto3 cannot use
            raise self._error("cannot be used", exc) from exc

    def check(self) -> None:
        """That the bucket is there and these credentials may use it: before any host is
        contacted (``BundleStoreError``)."""
        try:
            self.client().head_bucket(Bucket=self.location.bucket)
        except BundleStoreError:
            raise
        except Exception as exc:
            raise self._error("cannot be used", exc) from exc

    def upload(self, path: Path, sha256: str, size: int) -> bool:
        """``path`` (the bundle) under its key, unless an object of that size and digest is
        there already; True when it was uploaded. Blocking: the engine runs it in a thread."""
        key = self.key(sha256)
        if self._present(key, sha256, size):
            return False
        extra: dict[str, Any] = {
            "Metadata": {SHA256_METADATA: sha256},
            "ContentType": "application/x-tar",
        }
        try:
            self.client().upload_file(str(path), self.location.bucket, key, ExtraArgs=extra)
        except Exception as exc:
            raise self._error(f"did not take the bundle {key}", exc) from exc
        return True

    def _present(self, key: str, sha256: str, size: int) -> bool:
        try:
            head = self.client().head_object(Bucket=self.location.bucket, Key=key)
        except Exception as exc:
            if _status(exc) == 404:
                return False
            raise self._error(f"cannot be read ({key})", exc) from exc
        found = head.get("Metadata", {}).get(SHA256_METADATA)
        return head.get("ContentLength") == size and found == sha256

    def presign(self, sha256: str) -> str:
        """A GET URL for the bundle, valid ``url_expiry`` seconds: a secret (its query)."""
        try:
            return self.client().generate_presigned_url(
                "get_object",
                Params={"Bucket": self.location.bucket, "Key": self.key(sha256)},
                ExpiresIn=self.spec.url_expiry,
            )
        except Exception as exc:
            raise self._error("cannot presign a URL", exc) from exc
