"""Where ``--state`` (or ``ORCHESTRATOR_STATE``) puts things: the one parser of that option.

Its scheme names the store's backend (``state/base.py`` opens it): ``sqlite`` or
``postgresql``. Two places follow from a SQLite store: its file, and the state directory, which
holds the local group locks (``locks/``) and the host keys that ``accept-new`` records
(``known_hosts``). Both are absolute, ``~`` expanded, so that rollouts started from different
directories with the same ``--state`` share one history and exclude each other. A PostgreSQL
store keeps the history and the group locks in the database; the state directory is then the
user state dir, for ``known_hosts`` only.

- no value: the user state dir (``~/.local/state/orchestrator`` on Linux), ``history.sqlite`` in it
- ``sqlite:///path/file.db``, ``sqlite://~/file.db`` or ``sqlite:relative/file.db``: that file;
  the state dir is its directory
- a path ending in ``.sqlite``, ``.sqlite3`` or ``.db``: the same
- any other path: a directory, holding ``history.sqlite`` and the rest
- ``postgresql://user[:password]@host[:port]/db[?options]`` (or ``postgres://``): that
  database, connected to as libpq would (PGPASSWORD, ~/.pgpass, PGSSLMODE... apply); ``display``
  is the URL without its password, for every message
- ``SCHEME://...`` with another scheme: ``StoreURLError`` naming the schemes there are; nothing
  is created
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from orchestrator.errors import StoreURLError

APP_NAME = "orchestrator"
HISTORY_FILE = "history.sqlite"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
# The schemes a store can be opened with (``state/base.open_store``), and what each one means.
SCHEMES = (SQLITE, POSTGRESQL, "postgres")
BACKENDS = {SQLITE: SQLITE, POSTGRESQL: POSTGRESQL, "postgres": POSTGRESQL}
# A URL's scheme (RFC 3986) when an authority follows: ``foo:bar`` stays a path, as it always was.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SQLITE_PREFIX = re.compile(r"sqlite:(//)?", re.IGNORECASE)


@dataclass(frozen=True)
class StateLocation:
    history: Path  # the SQLite history store
    directory: Path  # locks/ and known_hosts
    scheme: str = SQLITE
    url: str | None = None  # a server's URL, as given (with its password, if it has one)

    @property
    def display(self) -> str:
        """Where it is, for messages: the file, or the URL without its password."""
        return str(self.history) if self.url is None else without_password(self.url)

    @property
    def locks(self) -> Path:
        return self.directory / "locks"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"


def store_scheme(state: str | None) -> str:
    """The backend ``state`` names: ``sqlite`` for no value, a path or a ``sqlite:`` URL;
    ``StoreURLError`` for any other ``SCHEME://``."""
    if not state or _SQLITE_PREFIX.match(state):
        return SQLITE
    url = _URL.match(state)
    if url is None:
        return SQLITE  # a path
    scheme = url.group(1).lower()
    if scheme not in SCHEMES:
        raise StoreURLError(
            f"{without_password(state)!r}: no store of scheme {scheme!r}; supported: "
            f"{', '.join(SCHEMES)} (sqlite:///path/to/history.sqlite, a file or directory path, "
            "or postgresql://user@host:port/database)"
        )
    return BACKENDS[scheme]


def without_password(url: str) -> str:
    """``url`` with the password of its authority (``user:password@``) and of a ``password=``
    query option replaced by ``***``: what messages and records show of a server's URL."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # unbalanced brackets, a bad port: still never shown
        return re.sub(
            r"(://[^/@?#]*?:)[^/@?#]*@", r"\1***@", re.sub(r"(?i)(password=)[^&]*", r"\1***", url)
        )
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _libpq_url(url: str) -> str:
    """``url`` as libpq will read it, its scheme in lower case (libpq knows only
    ``postgresql://`` and ``postgres://``); ``StoreURLError`` for one libpq cannot parse, before
    any connection, its password kept out of the message (libpq quotes what it could not read)."""
    scheme, sep, rest = url.partition("://")
    url = f"{scheme.lower()}{sep}{rest}"
    try:
        import psycopg.conninfo  # noqa: PLC0415 - only for PostgreSQL URLs
    except ImportError:
        return url  # opening the store says what to install
    try:
        ports = str(psycopg.conninfo.conninfo_to_dict(url).get("port") or "")
        if not all(port.strip().isdigit() for port in ports.split(",") if port.strip()):
            raise psycopg.ProgrammingError(f"the port is not a number: {ports!r}")
    except psycopg.Error as exc:
        reason = scrubbed(str(exc).strip(), url_password(url))
        raise StoreURLError(
            f"{without_password(url)!r} is not a PostgreSQL URL libpq can read ({reason}): "
            "postgresql://user@host:port/database[?option=value]"
        ) from None
    return url


def url_password(url: str) -> str | None:
    """The password in ``url``'s authority, however malformed the rest is."""
    found = re.match(r"[^:/]+://[^/@?#]*?:([^/@?#]*)@", url)
    return found.group(1) if found else None


# The password of a URL's authority, wherever one appears in a message (quoted or not).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s\"'/@:]*:)[^\s\"'@]*@")


def scrubbed(text: str, password: str | None = None) -> str:
    """A message with any URL's password, and ``password`` itself (as given or decoded),
    written ``***``: libpq never prints a password, but quotes a URL, or a token of one, that
    it failed to parse."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    for secret in {password, password and urllib.parse.unquote(password)} - {None, ""}:
        assert secret is not None
        text = text.replace(secret, "***")
    return text.replace("\n", " ")


def state_location(state: str | None) -> StateLocation:
    """Parse ``--state``; see the module's docstring for the forms it takes."""
    scheme = store_scheme(state)
    if scheme == POSTGRESQL and state:
        directory = Path(platformdirs.user_state_dir(APP_NAME))
        return StateLocation(directory / HISTORY_FILE, directory, scheme, _libpq_url(state))
    if not state:
        directory = Path(platformdirs.user_state_dir(APP_NAME))
        return StateLocation(directory / HISTORY_FILE, directory, scheme)
    prefix = _SQLITE_PREFIX.match(state)
    named = state[prefix.end() :] if prefix else state
    if not named:
        raise StoreURLError(f"{state!r} names no file: sqlite:///path/to/history.sqlite")
    try:
        path = Path(named).expanduser().absolute()
    except RuntimeError as exc:  # ~user for a user this machine does not know
        raise StoreURLError(f"{state!r}: {exc}") from exc
    if prefix or path.suffix in SQLITE_SUFFIXES:
        return StateLocation(path, path.parent, scheme)
    return StateLocation(path / HISTORY_FILE, path, scheme)
