"""One lab host: an OpenSSH sshd on a loopback address, optionally in its own mount namespace.

As root, each host runs in a private mount namespace where ``/srv``, ``/opt`` and ``/var/lib`` are
bind mounts of the host's own directories, so deployments to different lab hosts never see each
other's files. Without root, sshd runs as the invoking user in the shared filesystem, and each
host's deployment root is a directory of its own under the lab dir.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import LabError

# Paths a deployment touches that each namespaced host sees privately.
PRIVATE_MOUNTS = ("/srv", "/opt", "/var/lib")
READY_TIMEOUT = 15.0
SSHD_INSTALL_HINT = (
    "sshd (OpenSSH server) is not installed. Install it, for example with "
    "'apt-get install openssh-server' (Debian/Ubuntu) or 'dnf install openssh-server' (Fedora)."
)


def shell_startup_files() -> list[Path]:
    home = Path.home()
    return [
        home / name
        for name in (".bashrc", ".bash_profile", ".profile", ".bash_login")
        if (home / name).is_file()
    ]


def find_sshd() -> str:
    found = shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise LabError(SSHD_INSTALL_HINT)
    return found


def can_namespace() -> bool:
    return (
        os.geteuid() == 0
        and shutil.which("unshare") is not None
        and shutil.which("mount") is not None
    )


def generate_key(path: Path, comment: str) -> str:
    """An ed25519 key pair at ``path`` (private) and ``path.pub``; returns the public key line."""
    if not path.exists():
        keygen = shutil.which("ssh-keygen")
        if keygen is None:
            raise LabError("ssh-keygen is not installed (it comes with the OpenSSH client)")
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    return path.with_suffix(".pub").read_text().strip()


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class SshdHost:
    """What is needed to (re)start one host's sshd."""

    name: str
    address: str
    port: int
    directory: Path
    authorized_keys: Path
    namespaced: bool
    # The only directory on the sessions' PATH, and its `sh` the shell that reads their commands
    # (a busybox host: the applets of one busybox binary). None: the machine's own.
    session_path: Path | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def start_log(self) -> Path:
        return self.directory / "start.log"

    @property
    def session_wrapper(self) -> Path:
        return self.directory / "session"

    def mount_source(self, target: str) -> Path:
        return self.directory / "root" / target.strip("/").replace("/", "-")

    def prepare(self) -> str:
        """Write keys, config and private directories; return the host's public key line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for target in PRIVATE_MOUNTS:
            self.mount_source(target).mkdir(parents=True, exist_ok=True)
        public = generate_key(self.host_key, f"lab-host-{self.name}")
        self.config_path.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    *self._authorized_keys_lines(),
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "MaxSessions 10",
                    "MaxStartups 200:30:400",
                    "LoginGraceTime 30",
                    "ClientAliveInterval 0",
                    "Subsystem sftp internal-sftp",
                    "LogLevel INFO",
                    *self._session_lines(),
                    "",
                ]
            )
        )
        return public

    def _session_lines(self) -> list[str]:
        if self.session_path is None:
            return []
        # sshd hands every command to the user's login shell; this wrapper, which that shell
        # execs, hands it on to the PATH's own sh with nothing else on the PATH (as a login shell
        # of the host's would). The wrapper's interpreter is that sh too.
        shell = self.session_path / "sh"
        self.session_wrapper.write_text(
            f"#!{shell}\n"
            f"PATH={shlex.quote(str(self.session_path))}\n"
            "export PATH\n"
            'if [ -n "${SSH_ORIGINAL_COMMAND+set}" ]; then exec sh -c "$SSH_ORIGINAL_COMMAND"; fi\n'
            "exec sh -l\n"
        )
        self.session_wrapper.chmod(0o755)
        return [f"ForceCommand {self.session_wrapper}"]

    def _authorized_keys_lines(self) -> list[str]:
        if os.geteuid() != 0:
            return [f"AuthorizedKeysFile {self.authorized_keys}"]
        # sshd reads AuthorizedKeysFile as the user logging in, who may not reach the lab dir
        # (a test's tmp dir is private to root): read it as root for every lab user instead.
        return [
            "AuthorizedKeysFile none",
            f"AuthorizedKeysCommand /bin/cat {self.authorized_keys}",
            "AuthorizedKeysCommandUser root",
        ]

    def command(self, sshd: str) -> list[str]:
        daemon = [sshd, "-D", "-f", str(self.config_path), "-E", str(self.log_path)]
        if not self.namespaced:
            return daemon
        binds = "; ".join(
            f'mount --bind "${index + 1}" {target}' for index, target in enumerate(PRIVATE_MOUNTS)
        )
        # A lab host is a clean server: the controller user's shell startup files (pyenv, conda,
        # prompts) would otherwise run in every SSH channel the deployment opens.
        for rc in shell_startup_files():
            binds += f"; mount --bind /dev/null {shlex.quote(str(rc))}"
        script = f'set -e; {binds}; shift {len(PRIVATE_MOUNTS)}; exec "$@"'
        sources = [str(self.mount_source(target)) for target in PRIVATE_MOUNTS]
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "lab-host",
            *sources,
            *daemon,
        ]

    def start(self, sshd: str) -> subprocess.Popen[bytes]:
        """Start sshd and wait, bounded, until it answers with an SSH banner."""
        process = self.spawn(sshd)
        self.wait_ready(process)
        return process

    def spawn(self, sshd: str) -> subprocess.Popen[bytes]:
        """Start sshd without waiting for it (to start many hosts at once)."""
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        for target in PRIVATE_MOUNTS if self.namespaced else ():
            Path(target).mkdir(parents=True, exist_ok=True)
        with self.start_log.open("wb") as errors:
            process = subprocess.Popen(
                self.command(sshd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,  # not killed by the terminal's Ctrl-C
            )
        return process

    def wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"{self.name}: sshd exited at start: {self._failure_text(process)}")
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as conn:
                    if conn.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise LabError(
            f"{self.name}: sshd did not answer on {self.address}:{self.port} "
            f"within {READY_TIMEOUT:.0f}s"
        )

    def _failure_text(self, process: subprocess.Popen[bytes]) -> str:
        text = "".join(
            path.read_text(errors="replace")
            for path in (self.start_log, self.log_path)
            if path.exists()
        )
        return text.strip()[-800:] or f"exit status {process.returncode}"
