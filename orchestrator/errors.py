"""The one error hierarchy of orchestrator.

Split by whose fault it is: our user's input (``ConfigError``, nothing was contacted) or a host
(``HostError``, something went wrong over SSH or on the host)::

    OrchestratorError
    ├── ConfigError                 bad inventory, appspec, revision or option   -> exit 3
    │   ├── InventoryError
    │   ├── AppSpecError
    │   ├── RevisionError
    │   └── TemplateRenderError     a template of the revision cannot render for a host
    ├── HostError                   one host failed; carries ``host``
    │   ├── ConnectError
    │   │   ├── Unreachable         refused, no route, DNS, connection lost
    │   │   ├── ConnectTimeout      also a TimeoutError
    │   │   ├── AuthFailed          never retried
    │   │   ├── HostKeyMismatch     never retried
    │   │   └── ClientConfigError   ssh_config or a ProxyJump unusable; never retried
    │   ├── CommandFailed           a remote command exited non-zero
    │   ├── ReplyTooLarge           a host sent more than any reply of ours can hold
    │   └── CommandTimeout          also a TimeoutError
    ├── LockHeld                    another deployment of the group holds its lock    -> exit 7
    ├── StoreError                  the history store cannot be opened, read or written -> exit 8
    │                               (a database that went away mid-rollout, too)
    ├── StoreURLError               --state names no store (an unknown scheme)         -> exit 2
    ├── BundleStoreError            the bundle store cannot be reached or used          -> exit 8
    ├── RollbackImpossible          no revision to roll back to, or it is gone
    ├── InvalidRequest              asked of a deployment what it cannot do; nothing done -> exit 2
    │   └── NotInHistory            no such deployment in the history
    ├── TooManyFiles                the controller may not open a file for each host  -> exit 8
    ├── LabError                    the local lab fleet could not be started or stopped
    ├── LoadBalancerError           the group's load balancer refused or did not answer a step
    └── NotImplementedYet           a command that a later release fills in           -> exit 1

Third-party exceptions (asyncssh, OSError) are translated at the transport boundary with
``raise ... from exc`` so that nothing above it needs to know them.
"""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Root of every error orchestrator raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one input file, located as precisely as the input allows."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(OrchestratorError):
    """Our user's input is wrong. Carries every issue found, not only the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        if not issues:
            raise ValueError("ConfigError needs at least one issue")
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    @classmethod
    def single(
        cls, file: str, message: str, *, line: int | None = None, path: str = ""
    ) -> ConfigError:
        return cls([ConfigIssue(file=file, line=line, path=path, message=message)])


class InventoryError(ConfigError):
    """The inventory file is malformed or inconsistent."""


class AppSpecError(ConfigError):
    """The revision's appspec.yml is malformed or refers to what the bundle lacks."""


class RevisionError(ConfigError):
    """The revision cannot be read, or holds entries that are unsafe to install."""


class TemplateRenderError(ConfigError):
    """A template of the revision cannot be rendered for a host: its issues name the template,
    its line and the host."""


class HostError(OrchestratorError):
    """Something failed on, or on the way to, one host."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")


class ConnectError(HostError):
    """The SSH connection could not be set up."""


class Unreachable(ConnectError):
    """The host refused the connection, has no route, or the connection was lost."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The connection or handshake did not finish within the connect timeout."""


class AuthFailed(ConnectError):
    """The host rejected every credential offered. Retrying would not help."""


class HostKeyMismatch(ConnectError):
    """The host presented a key that known_hosts does not trust. Never retried."""


class ClientConfigError(ConnectError):
    """The controller's own SSH client settings for the host (its ssh_config entry, a ProxyJump)
    cannot be used. Retrying would not help."""


class CommandFailed(HostError):
    """A remote command exited with a non-zero status."""

    def __init__(
        self, host: str, message: str, *, exit_status: int | None, stderr_tail: str
    ) -> None:
        super().__init__(host, message)
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


class ReplyTooLarge(HostError):
    """A host's reply outgrew what the controller reads into memory: the host is broken or
    tampered with; the step fails and the connection's runner is not reused."""


class CommandTimeout(HostError, TimeoutError):
    """A remote command did not finish in time."""


class LockHeld(OrchestratorError):
    """Another deployment of the group is active: on this machine or on one of the hosts."""

    def __init__(self, message: str, holder: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


class StoreError(OrchestratorError):
    """The history store is unusable: corrupt, read-only, on a full disk, a database server gone
    or refusing us. Names the file (or the server's host:port/database, never a password) and
    what to do (``advice``, else what fits a file); an operator fixes this, retrying alone would
    not."""

    def __init__(
        self, path: object, doing: str, cause: BaseException, advice: str | None = None
    ) -> None:
        self.path = str(path)
        self.reason = _reason(cause)
        super().__init__(
            f"the history store {self.path} {doing}: {self.reason}; {advice or _advice(cause)}"
        )


def _reason(cause: BaseException) -> str:
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


def _advice(cause: BaseException) -> str:
    text = _reason(cause).lower()
    elsewhere = "or point --state (or ORCHESTRATOR_STATE) to another store"
    if any(word in text for word in ("not a database", "malformed", "corrupt", "damaged")):
        return (
            "it is damaged: move it aside (orchestrator then starts an empty history there) or "
            f"restore it from a backup, {elsewhere}"
        )
    if "full" in text or "no space" in text:
        return f"make room on its filesystem, {elsewhere}"
    if "locked" in text or "busy" in text:
        return "another process holds it: try again once it is done"
    return (
        "make the file and its directory writable by this user (SQLite also writes its -wal "
        f"and -shm files beside it), {elsewhere}"
    )


class BundleStoreError(OrchestratorError):
    """The bundle store (``bundle_store``) cannot be used: no such bucket, no credentials, an
    endpoint that does not answer. Names the bucket and endpoint, never a credential. Before any
    host is contacted it ends the command (exit 8); later, it fails DownloadBundle on the hosts
    that needed the upload."""


class StoreURLError(OrchestratorError, ValueError):
    """``--state`` (or ``ORCHESTRATOR_STATE``) names no store orchestrator can open: a scheme no
    backend serves, a URL without a file. The command line shows it as a usage error (exit 2)."""


class RollbackImpossible(OrchestratorError):
    """There is no earlier successful revision, or it can no longer be read."""


class InvalidRequest(OrchestratorError):
    """A request about a deployment that cannot be carried out as asked (resuming one that was
    not interrupted, stopping one that runs on another machine, ...): nothing was done. The
    command line shows it as a usage error (exit 2)."""


class NotInHistory(InvalidRequest):
    """The history has no such deployment."""


class TooManyFiles(OrchestratorError):
    """The deployment needs more open files than this process may have (``ulimit -n``), even
    after raising its soft limit to the hard one. Raised before any host is contacted."""


class LabError(OrchestratorError):
    """The local lab fleet could not be started, inspected or stopped."""


class NotImplementedYet(OrchestratorError):
    """A command that exists in the interface but is not built yet."""


class LoadBalancerError(OrchestratorError):
    """The deployment group's load balancer refused or did not answer a step (BlockTraffic or
    AllowTraffic fails on the host it was for)."""
