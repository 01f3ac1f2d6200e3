"""The bundle store's pure parts: s3:// URLs, the key a bundle is stored under, the inventory's
``bundle_store`` (errors with file, line and key), the options that name one, and how the
store's errors are worded (never a credential)."""

from __future__ import annotations

import pytest

from orchestrator.api.options import DeployOptions, store_spec
from orchestrator.errors import InvalidRequest, InventoryError
from orchestrator.integrations.bundle_store import store_reason
from orchestrator.models.bundle_store import (
    BundleStoreSpec,
    S3Location,
    bundle_key,
    parse_s3_url,
    s3_problem,
)
from orchestrator.models.inventory import parse_inventory

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bundles", S3Location("bundles", "")),
        ("s3://bundles/", S3Location("bundles", "")),
        ("s3://bundles/team/app", S3Location("bundles", "team/app")),
        ("s3://my.bucket-1/a/b.tar", S3Location("my.bucket-1", "a/b.tar")),
    ],
)
def test_s3_urls_are_read_into_bucket_and_key(url: str, expected: S3Location) -> None:
    assert parse_s3_url(url) == expected


def test_a_version_is_read_where_one_is_taken() -> None:
    location = parse_s3_url("s3://b-1/app.zip?versionId=3HL4kqtJlcpXroDTDmJ", revision=True)
    assert location == S3Location("b-1", "app.zip", "3HL4kqtJlcpXroDTDmJ")
    assert location.url() == "s3://b-1/app.zip?versionId=3HL4kqtJlcpXroDTDmJ"
    assert location.kind() == "zip"
    with pytest.raises(ValueError, match="no query"):
        parse_s3_url("s3://b-1/app.zip?versionId=1")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("s3://b-1/a.tar", "tar"),
        ("s3://b-1/a.TGZ", "tgz"),
        ("s3://b-1/a.tar.gz", "tgz"),
        ("s3://b-1/a.zip", "zip"),
        ("s3://b-1/build-42", None),
        ("s3://b-1/build-42?bundleType=zip", "zip"),
        ("s3://b-1/a.tar?bundleType=tgz&versionId=v", "tgz"),
    ],
)
def test_a_revisions_bundle_type_is_given_or_read_from_its_key(url: str, kind: str | None) -> None:
    assert parse_s3_url(url, revision=True).kind() == kind


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://b-1/a?bundleType=rar", "not one of tar, tgz, zip"),
        ("s3://b-1/a?acl=x", "only \\?versionId"),
        ("s3://b-1/a?versionId=1&versionId=2", "only \\?versionId"),
        ("s3://b-1/a?versionId=", "names no version"),
    ],
)
def test_a_revisions_query_takes_a_version_and_a_type_only(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_s3_url(url, revision=True)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://bucket/x", "not an s3:// URL"),
        ("s3://ab/x", "not a bucket name"),
        ("s3://bad_-/x", "not a bucket name"),
        ("s3://key:secret@bucket/x", "never credentials"),
        ("s3://bucket:9000/x", "never credentials or a port"),
        ("s3://bucket/a//b", "no empty"),
        ("s3://bucket/../b", "'..'"),
        ("s3://bucket/a b", "no spaces"),
        ("s3://bucket/a#f", "fragment"),
        ("s3://bucket/a?versionId=", "no query"),
    ],
)
def test_what_is_no_s3_url_is_said(url: str, problem: str) -> None:
    said = s3_problem(url)
    assert said is not None and problem in said
    assert "secret" not in said


def test_a_bundle_is_keyed_by_its_digest_under_the_prefix() -> None:
    assert bundle_key("deploys", SHA) == f"deploys/{SHA}.tar"
    assert bundle_key("team/app/", SHA) == f"team/app/{SHA}.tar"
    assert bundle_key("", SHA) == f"{SHA}.tar"


INVENTORY = """\
hosts:
  web-1: {{address: 127.0.0.1}}
applications:
  app:
    deployment_groups:
      web:
        hosts: [web-1]
        bundle_store:
{store}
"""


def _inventory(store: str) -> BundleStoreSpec | None:
    text = INVENTORY.format(store="\n".join(f"          {line}" for line in store.splitlines()))
    return parse_inventory(text, "inv.yaml").group("app", "web").bundle_store


def test_the_inventorys_bundle_store_and_its_defaults() -> None:
    spec = _inventory("url: s3://bundles/app\nendpoint_url: http://127.0.0.1:9000")
    assert spec == BundleStoreSpec(url="s3://bundles/app", endpoint_url="http://127.0.0.1:9000")
    assert (spec.fallback, spec.url_expiry, spec.region) == ("fail", 3600, None)
    assert spec.described() == "s3://bundles/app at http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("store", "line", "key", "problem"),
    [
        ("url: s3://x/app", 9, "url", "not a bucket name"),
        ("url: s3://bundles/app\nfallback: maybe", 10, "fallback", "'push' or 'fail'"),
        ("url: s3://bundles/app\nurl_expiry: 10", 10, "url_expiry", "greater than or equal"),
        ("url: s3://bundles/app\nbucket: b", 10, "", "unknown key 'bucket'"),
        (
            "url: s3://bundles/app\nendpoint_url: http://key:secret@store:9000",
            10,
            "endpoint_url",
            "no credentials",
        ),
    ],
)
def test_a_bad_bundle_store_is_named_by_file_line_and_key(
    store: str, line: int, key: str, problem: str
) -> None:
    with pytest.raises(InventoryError) as caught:
        _inventory(store)
    said = str(caught.value)
    where = f"inv.yaml:{line}: applications.app.deployment_groups.web.bundle_store"
    assert said.startswith(f"{where}.{key}:" if key else f"{where}:") and problem in said, said
    assert "secret" not in said


def test_the_options_replace_the_groups_url_and_endpoint() -> None:
    group = BundleStoreSpec(url="s3://bundles/app", fallback="push", url_expiry=600)
    assert store_spec(group, DeployOptions()) is group
    assert store_spec(None, DeployOptions()) is None
    both = DeployOptions(bundle_store="s3://other/p", bundle_store_endpoint="http://127.0.0.1:1")
    spec = store_spec(group, both)
    assert spec == BundleStoreSpec(
        url="s3://other/p", endpoint_url="http://127.0.0.1:1", fallback="push", url_expiry=600
    )
    endpoint_only = store_spec(group, DeployOptions(bundle_store_endpoint="http://s:1"))
    assert endpoint_only is not None and endpoint_only.url == "s3://bundles/app"
    with pytest.raises(InvalidRequest, match="needs a bundle store"):
        store_spec(None, DeployOptions(bundle_store_endpoint="http://s:1"))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"bundle_store": "https://bucket/x"}, "not an s3:// URL"),
        ({"bundle_store": "s3://bundles", "bundle_store_endpoint": "ftp://x"}, "scheme 'ftp'"),
    ],
)
def test_options_naming_no_store_are_refused_when_made(
    options: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        DeployOptions(**options)  # type: ignore[arg-type]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"signature ...X-Amz-Signature=abc... {code}")
        self.response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


def test_the_stores_errors_are_named_by_status_and_code_only() -> None:
    assert store_reason(_Refused(404, "NoSuchBucket", "The bucket does not exist")) == (
        "404 NoSuchBucket (The bucket does not exist)"
    )
    assert store_reason(_Refused(403, "403", "Forbidden")) == "403 Forbidden"
    assert store_reason(OSError("Could not connect to the endpoint URL")) == (
        "Could not connect to the endpoint URL"
    )


def test_only_a_deployment_through_a_store_asks_for_ssh_compression() -> None:
    from orchestrator.api.settings import Settings
    from orchestrator.transport.ssh_limits import COMPRESSION

    assert not Settings().transport()().limits.compress
    assert Settings(max_handshakes=3).transport(compress=True)().limits.compress
    assert Settings(max_handshakes=3).transport(compress=True)().limits.max_handshakes == 3
    assert COMPRESSION[0] == "zlib@openssh.com"
