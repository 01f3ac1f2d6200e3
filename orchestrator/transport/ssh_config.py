"""How to reach a host as ``ssh NAME`` would: OpenSSH's config, as asyncssh reads it.

Every connection setting comes from the first of: what the inventory sets (per host or in
``defaults``); the operator's ssh_config, its ``Host`` and ``Match`` blocks matched against the
host's inventory name; OpenSSH's own defaults (the name as the address, port 22, the local user,
the ``~/.ssh/id_*`` keys, ``~/.ssh/known_hosts``). The bastions of a ProxyJump are resolved the
same way under their own names, as ``ssh -J`` does. asyncssh parses ssh_config; this module only
decides what wins and turns whatever cannot be read into a per-host ``ClientConfigError``.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from orchestrator.errors import ClientConfigError
from orchestrator.models.hosts import HostSpec
from orchestrator.transport.asyncssh_quiet import asyncssh

# OpenSSH's default identities, in the order ssh(1) tries them.
OPENSSH_IDENTITY_FILES = (
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
)
OPENSSH_KNOWN_HOSTS = "~/.ssh/known_hosts"
DEFAULT_PORT = 22
MAX_JUMPS = 8  # a ProxyJump chain longer than this is a loop in ssh_config
_T = TypeVar("_T")


def expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))


@dataclass(frozen=True)
class Jump:
    """One hop of a ProxyJump: ``[user@]host[:port]``; what it leaves out, the hop's own
    ssh_config entry decides."""

    host: str
    port: int | None = None
    user: str | None = None

    def __str__(self) -> str:
        where = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{where}" if self.port is None else f"{user}{where}:{self.port}"


def parse_proxy_jump(value: str) -> tuple[Jump, ...]:
    """The hops of a ProxyJump value, first hop first, as OpenSSH reads them: comma-separated
    ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``, an IPv6 address in brackets when a
    port follows (``[::1]:2222``). Raises ``ValueError`` naming what is wrong."""
    hops = []
    for part in value.split(","):
        text = part.strip().removeprefix("ssh://").rstrip("/")
        user, at, where = text.rpartition("@")
        if at and not user:
            raise ValueError(f"ProxyJump '{value}': empty user in '{part.strip()}'")
        host, port = _host_port(where, value)
        hops.append(Jump(host, port, user or None))
    return tuple(hops)


def _host_port(text: str, value: str) -> tuple[str, int | None]:
    port_text: str | None = None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"ProxyJump '{value}': malformed '[address]:port' in '{text}'")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a name, an IPv4 address, or an IPv6 address without a port
        host = text
    if not host:
        raise ValueError(f"ProxyJump '{value}': a hop without a host")
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"ProxyJump '{value}': port '{port_text}' is not 1-65535")
    return host, int(port_text)


@dataclass(frozen=True)
class ConfigEntry:
    """What ssh_config says for one name (asyncssh's parse; None where it says nothing)."""

    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] | None = None
    identities_only: bool = False
    identity_agent: str | None = None  # "" when it says `none`
    known_hosts: tuple[str, ...] | None = None
    proxy_jump: str | None = None
    proxy_command: str | None = None  # its %h is HostName, else the name, as for `ssh NAME`


def read_config(
    paths: Sequence[Path], name: str, user: str | None, port: int | None
) -> ConfigEntry:
    """ssh_config's settings for ``name``; ``user`` and ``port`` are what the inventory set
    (they win, and ``Match user`` and ``%r``/``%p`` see them, as ``ssh -l -p`` would).
    Raises OSError or ValueError (asyncssh's ConfigParseError names the file and line)."""
    if not paths:
        return ConfigEntry()
    options = asyncssh.SSHClientConnectionOptions(
        config=[str(path) for path in paths],
        host=name,
        username=user if user is not None else (),
        port=port if port is not None else (),
        # Only the parse is wanted here: no keys, no agent, no known_hosts loaded.
        client_keys=None,
        known_hosts=None,
        agent_identities=None,
        x509_trusted_certs=None,
        x509_trusted_cert_paths=[],
    )
    config = options.config

    def text(option: str) -> str | None:
        value = config.get(option)
        return str(value) if value is not None else None

    def texts(option: str) -> tuple[str, ...] | None:
        value = config.get(option)
        return None if value is None else tuple(str(item) for item in value)  # type: ignore[attr-defined]

    agent = config.get("IdentityAgent", ())
    known = texts("UserKnownHostsFile")
    if known is not None:
        known = (*known, *(texts("GlobalKnownHostsFile") or ()))
    port_value = config.get("Port")
    return ConfigEntry(
        hostname=text("Hostname"),
        port=int(port_value) if isinstance(port_value, int) else None,
        user=text("User"),
        identity_files=texts("IdentityFile"),
        identities_only=bool(config.get("IdentitiesOnly")),
        identity_agent=None if agent == () else str(agent or ""),
        known_hosts=known,
        proxy_jump=text("ProxyJump"),
        proxy_command=text("ProxyCommand"),
    )


@dataclass(frozen=True)
class Route:
    """One hop resolved: ``host`` has its address, port and user set, as they will be used."""

    host: HostSpec
    address: str
    port: int
    user: str
    identity_files: tuple[Path, ...]  # the ones that exist: OpenSSH skips the others
    identities_only: bool
    agent_path: str | None  # None: $SSH_AUTH_SOCK; "": no agent
    known_hosts: tuple[Path, ...]
    proxy_command: str | None = None  # only without a ProxyJump, as OpenSSH
    jumps: tuple[Route, ...] = ()  # the bastions on the way, first hop first


def config_paths(host: HostSpec) -> tuple[Path, ...]:
    configured = host.ssh.config
    if configured is None or configured == "none":
        return ()
    path = expand(configured)
    return (path,) if path.exists() else ()  # as ssh(1): no ~/.ssh/config is no error


def resolve(host: HostSpec) -> Route:
    """The route to ``host``, its bastions included. Raises ``ClientConfigError`` (for the
    host's name) when ssh_config or a ProxyJump in it cannot be used."""
    paths = config_paths(host)
    route, proxy_jump = _resolve(host, host.name, paths, host.name)
    if proxy_jump is None:
        return route
    return dataclasses.replace(route, jumps=_bastions(host, proxy_jump, paths, (host.name,)))


def _resolve(
    host: HostSpec, lookup: str, paths: Sequence[Path], label: str
) -> tuple[Route, str | None]:
    try:
        entry = read_config(paths, lookup, host.user, host.port)
    except (OSError, ValueError, asyncssh.Error) as exc:
        # asyncssh's parse errors name the file and the line already.
        where = (
            "" if isinstance(exc, asyncssh.ConfigParseError) else f" {', '.join(map(str, paths))}"
        )
        message = f"{label}: ssh_config{where}: {exc}"
        raise ClientConfigError(host.name, message) from exc
    identity_names = _first(host.ssh.identity_files, entry.identity_files, OPENSSH_IDENTITY_FILES)
    known_names = _first(
        None if host.ssh.known_hosts is None else (host.ssh.known_hosts,),
        entry.known_hosts,
        (OPENSSH_KNOWN_HOSTS,),
    )
    address: str = host.address or entry.hostname or lookup
    port: int = _first(host.port, entry.port, DEFAULT_PORT)
    user: str = _first(host.user, entry.user, "") or _local_user(host, label)
    resolved = dataclasses.replace(
        host,
        address=address,
        port=port,
        user=user,
        ssh=dataclasses.replace(
            host.ssh,
            identity_files=tuple(identity_names),
            known_hosts=" ".join(known_names),
        ),
    )
    agent = entry.identity_agent
    route = Route(
        host=resolved,
        address=address,
        port=port,
        user=user,
        identity_files=tuple(p for p in map(expand, identity_names) if p.is_file()),
        identities_only=entry.identities_only,
        agent_path=os.environ.get("SSH_AUTH_SOCK") if agent == "SSH_AUTH_SOCK" else agent,
        known_hosts=tuple(map(expand, known_names)),
        proxy_command=None if entry.proxy_jump else entry.proxy_command,
    )
    return route, entry.proxy_jump


def _bastions(
    host: HostSpec, proxy_jump: str, paths: Sequence[Path], seen: tuple[str, ...]
) -> tuple[Route, ...]:
    """The bastions of ``proxy_jump``, each under its own ssh_config entry. The first hop's own
    ProxyJump comes before it (``ssh -J a,b`` reaches ``b`` through ``a`` whatever ``b``'s
    entry says, and ``a`` as ``ssh a`` would)."""
    try:
        hops = parse_proxy_jump(proxy_jump)
    except ValueError as exc:
        raise ClientConfigError(host.name, f"{seen[-1]}: {exc}") from exc
    if len(seen) + len(hops) > MAX_JUMPS + 1:
        chain = " -> ".join(seen)
        raise ClientConfigError(
            host.name, f"ProxyJump chain {chain} -> {proxy_jump} is longer than {MAX_JUMPS} hops"
        )
    routes: list[Route] = []
    for index, hop in enumerate(hops):
        # The inventory's keys and host key policy hold for its bastions too; where a bastion is
        # and who logs in there is the ProxyJump's and the bastion's own ssh_config's to say.
        # The agent is forwarded to the host that asked for it, never to a bastion on the way
        # (as `ssh -A -J`: the tunnel needs no agent on the bastion).
        ssh = dataclasses.replace(host.ssh, forward_agent=False)
        bastion = dataclasses.replace(host, address=None, port=hop.port, user=hop.user, ssh=ssh)
        label = f"bastion {hop}"
        route, own_jump = _resolve(bastion, hop.host, paths, label)
        if index == 0 and own_jump is not None:
            routes.extend(_bastions(host, own_jump, paths, (*seen, hop.host)))
        routes.append(route)
    return tuple(routes)


def _first(*values: _T | None) -> _T:
    return next(value for value in values if value is not None)


def _local_user(host: HostSpec, label: str) -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:  # no USER/LOGNAME and no passwd entry (some containers)
        message = f"{label}: no SSH user: set `user` in the inventory or `User` in ssh_config"
        raise ClientConfigError(host.name, message) from exc
