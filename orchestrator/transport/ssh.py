"""The SSH transport over asyncssh (with ``ssh_config.py``, which reads the operator's ssh_config
through it, the only modules that import asyncssh).

One connection per host. Its steps go, one after another, to a host-side runner that stays on
one channel for the session (``runner.py``): a step costs the host a fork, not a new channel
with its login shell. What comes while the runner is busy (a lock heartbeat during a hook,
``stop --force``) gets a channel of its own, capped below sshd's MaxSessions of 10. A global
cap on concurrent handshakes (``ssh_limits.py``), separate from how many hosts stay connected;
bounded retries with jitter for connection errors only, never for authentication, host keys or
client settings. asyncssh and OS errors become ``orchestrator.errors`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import (
    AuthFailed,
    CommandTimeout,
    ConnectError,
    ConnectTimeout,
    HostKeyMismatch,
    Unreachable,
)
from orchestrator.models.hosts import HostSpec
from orchestrator.private_paths import private_file
from orchestrator.transport.asyncssh_quiet import asyncssh
from orchestrator.transport.base import CommandResult, ScriptCall, SessionScript
from orchestrator.transport.commands import channel_command, runner_command
from orchestrator.transport.runner import Runner
from orchestrator.transport.ssh_config import Route, resolve
from orchestrator.transport.ssh_limits import COMPRESSION, PREFERRED_CIPHERS, SshLimits


class _HostKeyPolicyClient(asyncssh.SSHClient):
    """Sees the key a host presented when known_hosts does not trust it, and applies the policy."""

    def __init__(self, accept_new: Path | None, known: bool) -> None:
        self.presented_key_type: str | None = None
        self._accept_new = accept_new
        self._known = known

    def validate_host_public_key(
        self, host: str, addr: tuple[str, int] | str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented_key_type = key.get_algorithm()
        if self._accept_new is None or self._known:
            return False
        # accept-new: a host never seen before is trusted and recorded in our own file only.
        private_file(self._accept_new)
        entry = host if port == 22 else f"[{host}]:{port}"
        with self._accept_new.open("a") as handle:
            handle.write(f"{entry} {key.export_public_key().decode().strip()}\n")
        return True


@contextlib.contextmanager
def _mapped_errors(
    host: HostSpec,
    client: _HostKeyPolicyClient | None = None,
    passing: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    where = f"{host.address}:{host.port}"
    try:
        yield
    except passing:
        raise
    except asyncssh.HostKeyNotVerifiable as exc:
        key_type = client.presented_key_type if client else None
        raise HostKeyMismatch(
            host.name,
            f"host key {key_type or ''} presented by {where} is not trusted by "
            f"{host.ssh.known_hosts} ({exc.reason})".replace("key  ", "key "),
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthFailed(
            host.name, f"{host.user}@{where}: authentication failed ({exc.reason})"
        ) from exc
    except asyncssh.TimeoutError as exc:
        raise CommandTimeout(host.name, f"command timed out on {where}") from exc
    except (asyncssh.DisconnectError, asyncssh.ConnectionLost, asyncssh.ChannelOpenError) as exc:
        raise Unreachable(host.name, f"connection to {where} lost: {exc.reason}") from exc
    except TimeoutError as exc:
        raise ConnectTimeout(
            host.name, f"no SSH answer from {where} within {host.ssh.connect_timeout:g}s"
        ) from exc
    except asyncssh.Error as exc:
        raise Unreachable(host.name, f"SSH error with {where}: {exc}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(host.name, f"cannot connect to {where}: {reason}") from exc


class SshSession:
    """One connection to one host, running ``script``'s calls."""

    def __init__(
        self,
        host: HostSpec,
        connection: asyncssh.SSHClientConnection,
        channels: int,
        script: SessionScript,
        uploads: asyncio.Semaphore | None = None,
    ) -> None:
        self._host = host
        self._connection = connection
        self._script = script
        self._uploads = uploads or asyncio.Semaphore(1)
        # The runner holds one channel for the session; the rest are for what comes meanwhile.
        self._channels = asyncio.Semaphore(max(1, channels - 1))
        self._runner: Runner | None = None
        self._runner_busy = asyncio.Lock()

    @property
    def host(self) -> HostSpec:
        return self._host

    async def call(
        self,
        *calls: ScriptCall,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
        ordered: bool = True,
    ) -> CommandResult:
        if not ordered and stdin_file is None and self._runner_busy.locked():
            return await self._channel_call(calls, stdin, timeout)
        async with self._runner_busy:
            try:
                if self._runner is None:
                    self._runner = await self._start_runner()
                running = self._runner.run(calls, stdin, stdin_file, self._uploads)
                return await asyncio.wait_for(running, timeout)
            except BaseException as exc:
                # A request cut short leaves the runner's stream mid-reply: never reuse it.
                if self._runner is not None:
                    self._runner.close()
                    self._runner = None
                if isinstance(exc, TimeoutError):
                    where = f"{self._host.address}:{self._host.port}"
                    raise CommandTimeout(self._host.name, f"command timed out on {where}") from exc
                raise

    async def _start_runner(self) -> Runner:
        host, script = self._host, self._script
        with _mapped_errors(host):
            command = runner_command(host, script)
            process = await self._connection.create_process(command, encoding=None)
            errors = functools.partial(_mapped_errors, host, None)
            return Runner(host, process, script.new_secret(), script, errors)

    async def _channel_call(
        self, calls: tuple[ScriptCall, ...], stdin: bytes | None, timeout: float | None
    ) -> CommandResult:
        """Calls on a channel of their own, given what the script says they read first."""
        script = self._script
        secret = script.new_secret()
        command = channel_command(self._host, calls, script)
        async with self._channels:
            with _mapped_errors(self._host):
                result = await self._connection.run(
                    command,
                    check=False,
                    timeout=timeout,
                    encoding=None,
                    input=script.channel_input(secret, calls) + (stdin or b""),
                )
        return script.channel_result(
            result.exit_status if result.exit_signal is None else None,
            _bytes(result.stdout),
            _bytes(result.stderr),
            secret,
        )

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        stdin_file: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        redirect: dict[str, Any] = {}
        if stdin_file is not None:
            redirect["stdin"] = str(stdin_file)  # asyncssh streams the file in chunks
        elif stdin:
            redirect["input"] = stdin
        else:
            redirect["stdin"] = asyncssh.DEVNULL
        async with self._channels:
            with _mapped_errors(self._host):
                result = await self._connection.run(
                    command, check=False, timeout=timeout, encoding=None, **redirect
                )
        return CommandResult(
            exit_status=result.exit_status if result.exit_signal is None else None,
            stdout=_bytes(result.stdout).decode(errors="replace"),
            stderr=_bytes(result.stderr).decode(errors="replace"),
        )

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        self._connection.close()
        with contextlib.suppress(Exception):
            await self._connection.wait_closed()


def _bytes(data: Any) -> bytes:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return str(data or "").encode()


class SshTransport:
    """Opens ``SshSession`` objects under a shared handshake cap, each running ``script``."""

    def __init__(
        self,
        limits: SshLimits | None = None,
        accept_new_file: Path | None = None,
        *,
        script: SessionScript,
    ) -> None:
        self.script = script
        self.limits = limits or SshLimits()
        self._handshakes = asyncio.Semaphore(self.limits.max_handshakes)
        self._uploads = asyncio.Semaphore(self.limits.max_uploads)
        self._accept_new_file = accept_new_file
        # ProxyJump bastions: one connection per chain of hops, shared as the tunnel of every
        # host behind it (and of the next hop's connection).
        self._bastions: dict[tuple[tuple[str, str, int], ...], _Pending] = {}
        self._trusted: dict[tuple[str, ...], asyncssh.SSHKnownHosts] = {}
        # Identity files parsed once per transport, not per host (their errors are per host).
        self._identities: dict[Path, list[asyncssh.SSHKeyPair]] = {}

    async def close(self) -> None:
        """Close the bastion connections (host sessions are closed by their owners)."""
        for task in reversed(list(self._bastions.values())):
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
        self._bastions.clear()

    async def connect(self, host: HostSpec) -> SshSession:
        """A session with ``host``, whose ``host`` is the spec as contacted: address, port and
        user as the inventory, else ssh_config, else OpenSSH's defaults say."""
        for attempt in range(self.limits.connect_retries + 1):
            try:
                async with self._handshakes:
                    route = resolve(host)
                    connection = await self._open(route)
                channels = self.limits.max_channels_per_host
                return SshSession(route.host, connection, channels, self.script, self._uploads)
            except (Unreachable, ConnectTimeout):
                if attempt == self.limits.connect_retries:
                    raise
                delay = self.limits.retry_base_delay * (2**attempt)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
        raise AssertionError("unreachable")

    async def _open(self, route: Route) -> asyncssh.SSHClientConnection:
        tunnel = None
        for depth in range(len(route.jumps)):
            tunnel = await self._bastion(route.jumps[: depth + 1], tunnel, route.host.name)
        return await self._direct(route, tunnel)

    async def _bastion(
        self,
        chain: tuple[Route, ...],
        tunnel: asyncssh.SSHClientConnection | None,
        name: str,
    ) -> asyncssh.SSHClientConnection:
        """The shared connection to the last hop of ``chain``, opened by the first host behind
        it; its failure is reported for each host that needed it, under that host's name."""
        key = tuple((hop.user, hop.address, hop.port) for hop in chain)
        task = self._bastions.get(key)
        if task is None or _unusable(task):
            task = asyncio.ensure_future(self._direct(chain[-1], tunnel))
            self._bastions[key] = task
        try:
            return await asyncio.shield(task)
        except ConnectError as exc:
            hop = chain[-1]
            where = f"{hop.user}@{hop.host.destination}"
            raise type(exc)(name, f"bastion {where}: {exc.message}") from exc

    def _known_hosts(self, route: Route) -> tuple[Any, Path | None, bool]:
        """(known_hosts argument for asyncssh, file to record new keys in, host already known)."""
        policy = route.host.ssh.host_key_policy
        if policy == "off":
            return None, None, True
        files = [str(path) for path in route.known_hosts if path.exists()]
        if policy == "accept-new" and self._accept_new_file is not None:
            if self._accept_new_file.exists():
                files.append(str(self._accept_new_file))
            trusted = asyncssh.read_known_hosts(files) if files else None
            known = bool(trusted and trusted.match(route.address, route.address, route.port)[0])
            return (files or []), self._accept_new_file, known
        if not files:
            return [], None, True
        # Parsed once per transport, not per connection (measured: a 100-line known_hosts file
        # parsed for each of 100 hosts was 11% of a rollout's controller CPU, and it grows N^2).
        key = tuple(files)
        if key not in self._trusted:
            self._trusted[key] = asyncssh.read_known_hosts(files)
        return self._trusted[key], None, True

    def _client_keys(self, route: Route) -> tuple[list[asyncssh.SSHKeyPair], list[str]]:
        """The identity files' keys, and the passphrase-protected ones left to ssh-agent: as
        OpenSSH, a key the agent holds is used from the agent and never needs its passphrase."""
        keys: list[asyncssh.SSHKeyPair] = []
        encrypted: list[str] = []
        for path in route.identity_files:
            if path not in self._identities:
                try:
                    loaded = asyncssh.load_keypairs(str(path), ignore_encrypted=True)
                except (OSError, ValueError, asyncssh.Error) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise AuthFailed(
                        route.host.name, f"cannot use identity file {path}: {reason}"
                    ) from exc
                self._identities[path] = list(loaded)
            keys.extend(self._identities[path])
            if not self._identities[path]:
                encrypted.append(str(path))
        return keys, encrypted

    async def _direct(
        self, route: Route, tunnel: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        host = route.host
        known_hosts, accept_new, known = self._known_hosts(route)
        client = _HostKeyPolicyClient(accept_new, known)
        keys, encrypted = self._client_keys(route)
        extra: dict[str, Any] = {"tunnel": tunnel} if tunnel is not None else {}
        if tunnel is None and route.proxy_command is not None:
            extra["proxy_command"] = route.proxy_command
        if route.agent_path is not None:
            extra["agent_path"] = route.agent_path
        if self.limits.compress:
            extra["compression_algs"] = COMPRESSION
        if route.identities_only:
            # The agent's keys filtered to these identities; a .pub file names an encrypted one.
            extra["agent_identities"] = [
                str(_public_half(path)) for path in route.identity_files
            ] or None
        try:
            with _mapped_errors(host, client):
                connection, _ = await asyncssh.create_connection(
                    lambda: client,
                    route.address,
                    route.port,
                    username=route.user,
                    client_keys=keys,
                    known_hosts=known_hosts,
                    config=None,  # read already, for the host's name (ssh_config.py)
                    connect_timeout=host.ssh.connect_timeout,
                    login_timeout=host.ssh.connect_timeout * 3,
                    keepalive_interval=host.ssh.keepalive_interval,
                    keepalive_count_max=3,
                    encryption_algs=PREFERRED_CIPHERS,
                    # The inventory's choice alone: ssh_config's ForwardAgent is not read.
                    agent_forwarding=host.ssh.forward_agent,
                    **extra,
                )
        except AuthFailed as exc:
            if not encrypted:
                raise
            skipped = ", ".join(encrypted)
            raise AuthFailed(
                host.name,
                f"{exc.message}; passphrase-protected {skipped} skipped: "
                "load it into ssh-agent (ssh-add)",
            ) from exc
        return connection


_Pending = asyncio.Task[asyncssh.SSHClientConnection]


def _unusable(task: _Pending) -> bool:
    """A bastion connection that failed or has closed since: the next host opens a new one."""
    if not task.done():
        return False
    if task.cancelled() or task.exception() is not None:
        return True
    return bool(task.result().is_closed())


def _public_half(path: Path) -> Path:
    public = path.with_name(path.name + ".pub")
    return public if public.is_file() else path
