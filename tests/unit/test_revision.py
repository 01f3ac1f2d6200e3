"""Revisions from every source kind, normalised into one tar; unsafe bundles refused."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.errors import AppSpecError, RevisionError
from orchestrator.revision import build_revision
from tests.paths import HELLO_WEB


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    target = tmp_path / "hello-web"
    shutil.copytree(HELLO_WEB, target)
    return target


def names(path: Path) -> set[str]:
    with tarfile.open(path) as archive:
        return {member.name for member in archive.getmembers()}


def test_directory_revision(bundle: Path, cache: Path) -> None:
    revision = build_revision(str(bundle), cache)
    assert revision.kind == "directory"
    assert revision.tar_path == cache / f"{revision.sha256}.tar"
    assert {"appspec.yml", "www/index.html", "scripts/start.sh"} <= names(revision.tar_path)
    start = revision.entry("scripts/start.sh")
    assert start is not None and start.kind == "file" and start.mode & 0o111
    assert revision.entry("www") is not None and revision.entry("www").kind == "dir"  # type: ignore[union-attr]
    again = build_revision(str(bundle), cache)
    assert again.sha256 == revision.sha256  # the same content is the same revision


def test_tar_owner_is_normalised(bundle: Path, cache: Path) -> None:
    revision = build_revision(str(bundle), cache)
    with tarfile.open(revision.tar_path) as archive:
        assert {(m.uid, m.gid, m.uname) for m in archive.getmembers()} == {(0, 0, "")}


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_tar_revisions_strip_a_single_top_level_directory(
    bundle: Path, cache: Path, tmp_path: Path, suffix: str, mode: str
) -> None:
    archive_path = tmp_path / f"rev{suffix}"
    with tarfile.open(archive_path, mode) as archive:  # type: ignore[call-overload]
        archive.add(bundle, arcname="hello-web-1.2.3")
    revision = build_revision(str(archive_path), cache)
    assert revision.kind in ("tar", "tgz")
    assert "appspec.yml" in names(revision.tar_path)
    assert revision.entry("www/index.html") is not None


def test_single_top_level_directory_without_appspec_is_kept(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "src" / "only").mkdir(parents=True)
    (tmp_path / "src" / "only" / "file.txt").write_text("x")
    archive_path = tmp_path / "rev.tar"
    with tarfile.open(archive_path, "w") as archive:
        archive.add(tmp_path / "src" / "only", arcname="only")
    with pytest.raises(AppSpecError, match="no appspec.yml"):
        build_revision(str(archive_path), cache)


def test_zip_revision_with_symlink_and_modes(bundle: Path, cache: Path, tmp_path: Path) -> None:
    archive_path = tmp_path / "rev.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in sorted(bundle.rglob("*")):
            archive.write(path, path.relative_to(bundle).as_posix())
        link = zipfile.ZipInfo("www/latest.html")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "index.html")
    revision = build_revision(str(archive_path), cache)
    assert revision.kind == "zip"
    latest = revision.entry("www/latest.html")
    assert latest is not None and (latest.kind, latest.target) == ("symlink", "index.html")
    start = revision.entry("scripts/start.sh")
    assert start is not None and start.mode & 0o111


def test_git_revision(bundle: Path, cache: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(bundle), *args],
            check=True,
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@t",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t",
            },
        ).stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "one")
    commit = git("rev-parse", "HEAD").strip()
    revision = build_revision(f"git:{bundle}@HEAD", cache)
    assert (revision.kind, revision.commit) == ("git", commit)
    assert "appspec.yml" in names(revision.tar_path)
    with pytest.raises(RevisionError, match="'nope' is not a commit"):
        build_revision(f"git:{bundle}@nope", cache)
    with pytest.raises(RevisionError, match="git:REPO_PATH@REF"):
        build_revision("git:@HEAD", cache)


def test_appspec_yaml_fallback(bundle: Path, cache: Path) -> None:
    (bundle / "appspec.yml").rename(bundle / "appspec.yaml")
    assert build_revision(str(bundle), cache).appspec.file.endswith("appspec.yaml")


def _tar_with(tmp_path: Path, bundle: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as archive:
        archive.add(bundle, arcname=".")
        archive.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize(
    "name,kind,link,message",
    [
        ("/etc/cron.d/evil", tarfile.REGTYPE, "", "absolute path"),
        ("www/../../evil", tarfile.REGTYPE, "", "climbs out of the bundle"),
        ("www/link", tarfile.SYMTYPE, "/etc/passwd", "symbolic link to an absolute path"),
        ("www/link", tarfile.SYMTYPE, "../../etc/passwd", "points outside the bundle"),
        ("www/hard", tarfile.LNKTYPE, "appspec.yml", "hard links are not allowed"),
        ("dev/null", tarfile.CHRTYPE, "", "device, fifo or socket"),
        ("pipe", tarfile.FIFOTYPE, "", "device, fifo or socket"),
    ],
)
def test_unsafe_entries_are_refused(
    bundle: Path, cache: Path, tmp_path: Path, name: str, kind: bytes, link: str, message: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    data = b"x" if kind == tarfile.REGTYPE else b""
    member.size = len(data)
    with pytest.raises(RevisionError, match=message):
        build_revision(str(_tar_with(tmp_path, bundle, member, data)), cache)
    assert not list(cache.glob("*.tar"))  # nothing was produced


def test_links_inside_the_bundle_are_fine(bundle: Path, cache: Path) -> None:
    (bundle / "www" / "home.html").symlink_to("index.html")
    (bundle / "www" / "up").symlink_to("../scripts")
    revision = build_revision(str(bundle), cache)
    assert revision.entry("www/up") is not None


def test_directory_with_a_fifo_or_outside_link_is_refused(bundle: Path, cache: Path) -> None:
    os.mkfifo(bundle / "www" / "pipe")
    (bundle / "www" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(RevisionError) as caught:
        build_revision(str(bundle), cache)
    text = str(caught.value)
    assert "www/pipe: device, fifo or socket" in text
    assert (
        "www/passwd: symbolic link to an absolute path" in text
    )  # every problem, not only the first


def test_missing_and_unknown_sources(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="revision not found"):
        build_revision(str(tmp_path / "nope"), cache)
    (tmp_path / "rev.rar").write_text("x")
    with pytest.raises(RevisionError, match="unknown revision type"):
        build_revision(str(tmp_path / "rev.rar"), cache)
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(RevisionError, match="not a readable tar archive"):
        build_revision(str(tmp_path / "broken.tar.gz"), cache)


def test_validate_command_reports_an_unsafe_revision_with_exit_3(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bundle / "www" / "passwd").symlink_to("/etc/passwd")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "-r", str(bundle)])
    assert result.exit_code == 3
    assert "www/passwd: symbolic link to an absolute path" in result.stderr


def test_a_chain_of_links_that_climbs_out_is_refused(bundle: Path, cache: Path) -> None:
    deep = bundle / "d" / "e"
    deep.mkdir(parents=True)
    (deep / "p").symlink_to("../..")  # the bundle root: fine on its own
    (deep / "q").symlink_to("p/../..")  # p first, then two levels above the root
    with pytest.raises(RevisionError) as caught:
        build_revision(str(bundle), cache)
    text = str(caught.value)
    assert "d/e/q: symbolic link 'p/../..' points outside the bundle" in text
    assert "d/e/p" not in text
    (deep / "q").unlink()
    (deep / "r").symlink_to("p/www/../scripts/start.sh")  # through p, staying inside
    assert build_revision(str(bundle), cache).entry("d/e/r") is not None


def test_links_that_loop_are_refused(bundle: Path, cache: Path) -> None:
    (bundle / "a").symlink_to("b")
    (bundle / "b").symlink_to("a/x")
    with pytest.raises(RevisionError, match="too many symbolic links"):
        build_revision(str(bundle), cache)


def test_an_entry_below_a_link_is_refused(bundle: Path, cache: Path, tmp_path: Path) -> None:
    link = tarfile.TarInfo("www/up")
    link.type = tarfile.SYMTYPE
    link.linkname = ".."
    path = _tar_with(tmp_path, bundle, link)
    with tarfile.open(path, "a") as archive:
        member = tarfile.TarInfo("www/up/evil.txt")
        member.size = 1
        archive.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(
        RevisionError, match="www/up/evil.txt: lies below the symbolic link 'www/up'"
    ):
        build_revision(str(path), cache)


@pytest.mark.parametrize("source", ["directory", "tar"])
def test_names_that_are_not_utf8_are_refused(
    bundle: Path, cache: Path, tmp_path: Path, source: str
) -> None:
    name = os.fsdecode(b"www/caf\xe9.html")
    if source == "directory":
        (bundle / name).write_text("x")
        spec = bundle
    else:
        member = tarfile.TarInfo(name)
        member.size = 1
        spec = _tar_with(tmp_path, bundle, member, b"x")
    with pytest.raises(RevisionError, match=r"'www/caf\\xe9.html' is not UTF-8"):
        build_revision(str(spec), cache)


def test_an_appspec_that_is_not_utf8_is_an_error_naming_its_line(bundle: Path, cache: Path) -> None:
    text = (bundle / "appspec.yml").read_bytes()
    (bundle / "appspec.yml").write_bytes(text + b"# caf\xe9\n")
    with pytest.raises(AppSpecError) as caught:
        build_revision(str(bundle), cache)
    line = text.count(b"\n") + 1
    assert f"appspec.yml:{line}: not UTF-8 text: byte 0xe9" in str(caught.value)
