"""DownloadBundle from a bundle store, as the host runs it (``download.sh`` with a FETCH tool)
under dash and busybox sh, with curl and with wget: the presigned URL comes on stdin, the
store's refusal is named by its status and S3 error code, a bundle that is not the deployment's
is refused, and the URL's query (a credential) is in no output and no file.

The store here is a small HTTP server answering as S3 does; the integration tests fetch from a
real S3-compatible server (``tests/integration/test_bundle_store.py``).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import shutil
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.hostproto.requests import FETCH_FAILED, DownloadRequest
from tests.unit.host_programs import SHELLS, run_runner

SECRET = "X-Amz-Signature=0f0f0fsecretsignature&X-Amz-Credential=AKIASECRETKEYID"
S3_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>{message}</Message><Key>b.tar</Key><RequestId>1</RequestId></Error>"
)


def _bundle() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"version: 0.0\nos: linux\n"
        info = tarfile.TarInfo("appspec.yml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), hashlib.sha256(buffer.getvalue()).hexdigest()


BUNDLE, SHA = _bundle()
ANSWERS = {
    "/bucket/ok.tar": (200, BUNDLE),
    "/bucket/tampered.tar": (200, BUNDLE + b"\0" * 512),
    "/bucket/missing.tar": (
        404,
        S3_ERROR.format(code="NoSuchKey", message="The specified key does not exist.").encode(),
    ),
    "/bucket/denied.tar": (
        403,
        S3_ERROR.format(code="AccessDenied", message="Access Denied").encode(),
    ),
}


class _Store(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        status, body = ANSWERS.get(path, (500, b"")) if query == SECRET else (400, b"no query")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def store() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fetch(sh: str, tool: str, url: str, root: Path, sha: str = SHA) -> tuple[int | None, str]:
    request = DownloadRequest(str(root), "g 1", "d-1", sha, None, 5, None, tool)
    result = run_runner(sh, [((request.call(),), f"{url}\n".encode())])[0]
    said = result.stdout + result.stderr
    assert SECRET not in said and "AKIASECRET" not in said
    for path in root.rglob("*"):
        if path.is_file():
            assert b"AKIASECRET" not in path.read_bytes(), path
    return result.exit_status, said


def _gnu_wget(sh: str, tool: str) -> bool:
    # busybox sh runs its own wget applet, which takes its URL only as an argument.
    return tool == "curl" or sh != "busybox"


TOOLS = [tool for tool in ("curl", "wget") if shutil.which(tool)]


@pytest.mark.parametrize("tool", ["curl", "wget"])
def test_the_machine_has_both_fetch_tools(tool: str) -> None:
    assert shutil.which(tool), f"{tool} is not installed (.ci/run installs it)"


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_host_fetches_checks_and_unpacks_the_bundle(
    sh: str, tool: str, store: str, tmp_path: Path
) -> None:
    status, said = _fetch(sh, tool, f"{store}/bucket/ok.tar?{SECRET}", tmp_path)
    if not _gnu_wget(sh, tool):
        assert status == FETCH_FAILED and "not GNU Wget" in said
        return
    assert status == 0, said
    assert said == f"fetched the bundle from the bundle store with {tool}\n"
    directory = tmp_path / "g 1" / "d-1"
    assert (directory / "bundle.tar").read_bytes() == BUNDLE
    assert (directory / "bundle.sha256").read_text() == f"{SHA}\n"
    assert (directory / "deployment-archive" / "appspec.yml").is_file()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("missing.tar", "the bundle store answered HTTP 404 NoSuchKey (The specified key"),
        ("denied.tar", "the bundle store answered HTTP 403 AccessDenied (Access Denied)"),
        ("tampered.tar", "the bundle fetched from the bundle store is not this deployment's"),
    ],
)
@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_refused_or_wrong_bundle_fails_with_the_stores_word(
    sh: str, tool: str, key: str, expected: str, store: str, tmp_path: Path
) -> None:
    status, said = _fetch(sh, tool, f"{store}/bucket/{key}?{SECRET}", tmp_path)
    assert status == FETCH_FAILED, said
    if _gnu_wget(sh, tool):
        assert expected in said, said
    directory = tmp_path / "g 1" / "d-1"
    # Nothing of it is left to be taken for the bundle.
    assert not (directory / "bundle.tar").exists()
    assert not (directory / "bundle.sha256").exists()


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_store_that_does_not_answer_is_named_without_the_query(
    sh: str, tool: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/bucket/ok.tar?{SECRET}"
    status, said = _fetch(sh, tool, url, tmp_path)
    assert status == FETCH_FAILED, said
    if _gnu_wget(sh, tool):
        assert f"could not be fetched from the bundle store with {tool}" in said, said
        assert "refused" in said.lower() or "connect" in said.lower(), said


def test_the_url_is_never_an_argument_of_a_process(store: str, tmp_path: Path) -> None:
    """What `ps` shows: the runner's programs and curl run with no URL among their arguments
    (curl is replaced by a script that records its own)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorded = tmp_path / "argv"
    real = shutil.which("curl")
    assert real is not None
    fake = bin_dir / "curl"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\nexec {real} "$@"\n')
    fake.chmod(0o755)
    request = DownloadRequest(str(tmp_path / "root"), "g", "d-1", SHA, None, 5, None, "curl")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    url = f"{store}/bucket/ok.tar?{SECRET}"
    result = run_runner("dash", [((request.call(),), f"{url}\n".encode())], env)[0]
    assert result.exit_status == 0, result.stderr
    arguments = recorded.read_text()
    assert "ok.tar" not in arguments and SECRET not in arguments
    assert "-K" in arguments.split("\n")
    assert all(url not in arg for arg in request.argv())
