"""What the SSH transport takes of the controller: handshakes, uploads and channels at once
(``SshLimits``), the ciphers it prefers, and the file descriptors a deployment holds, counted
before it starts (``orchestrator.limits`` raises the process's limit to it, or refuses it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.models.hosts import HostSpec
from orchestrator.transport.ssh_config import config_paths


@dataclass(frozen=True)
class SshLimits:
    # Handshakes in flight (TCP connect, key exchange, authentication). Where they are CPU-bound
    # more at once gain nothing: on lab hosts sharing the controller's 2 cores, 100 hosts were
    # connected, probed and locked 3.9 / 3.7 / 3.6 s after the start with 8 / 32 / 128, 500 hosts
    # 15.8 / 13.8 / 14.1 s with 32 / 64 / 128 (noise). Where they wait on round trips more gain:
    # 200 hosts behind a 100 ms round trip took 11.1 / 7.7 / 7.0 / 6.5 s with 16 / 32 / 64 / 128
    # (bench/handshakes.py). Fleets far away raise it with `--max-handshakes`.
    max_handshakes: int = 32
    # Bundles streaming at once. Each holds up to ~100 KB of the controller's memory in flight
    # (chunk, channel and socket buffers): unbounded, 500 hosts took 45 MB more than a redeploy.
    # Fewer streams hand each host its bundle sooner, so its hooks overlap the others' uploads:
    # at 500 lab hosts 16 took 0.77-0.80x the floor against 0.87-0.91x with 64 (and 9 MB less);
    # 16 streams of OpenSSH's 2 MB window still fill a 1 Gbit/s link at 100 ms of round trip.
    max_uploads: int = 16
    max_channels_per_host: int = 8  # below OpenSSH's default MaxSessions (10)
    connect_retries: int = 2
    retry_base_delay: float = 0.5
    # SSH compression (zlib@openssh.com), asked for when a deployment's hosts fetch the bundle
    # from a bundle store: the connections then carry only control traffic, mostly the runner's
    # programs (54 KB) and the install instructions (40 KB for 272 files), which compress 3 and
    # 10 times. Off otherwise: a bundle pushed over it would be compressed for every host.
    compress: bool = False


# Measured (py-spy, bench/rollout.py): asyncssh builds a ChaCha20 cipher object per packet, the
# controller's main cost while uploading bundles; with AES-GCM first, 50 hosts x 5 MB took 2.65 s
# of controller CPU instead of 4.23 s.
# SshLimits.compress: compressed when the host's sshd takes it (OpenSSH does by default).
COMPRESSION = ("zlib@openssh.com", "none")
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)


# The file descriptors of a deployment, every host connected at once (measured with /proc/PID/fd
# on lab rollouts: peaks of 12, 20 and 50 for 1, 10 and 40 hosts): one socket a host. The rest
# is the controller's own (the interpreter's, the history store, the events file, the bundle files
# of `max_uploads` uploads, a reconnect's second socket) and headroom.
BASE_DESCRIPTORS = 64
# A ProxyCommand is a process whose stdin, stdout and stderr are the controller's pipes (and a
# pidfd to wait for it). A host behind a ProxyJump holds less than one: its connection is a
# channel of its bastion's, which is one socket for all of them.
PROXY_COMMAND_DESCRIPTORS = 4


def descriptors_for(hosts: Sequence[HostSpec]) -> int:
    """The file descriptors a deployment to ``hosts`` holds at most. Each host's ssh_config is
    not resolved for it (1.35 s for 1000 hosts): a config file with a ProxyCommand anywhere
    counts one for each host that reads it."""
    proxied: dict[tuple[Path, ...], bool] = {}
    total = BASE_DESCRIPTORS
    for host in hosts:
        paths = config_paths(host)
        if paths not in proxied:
            proxied[paths] = any(_mentions_proxy_command(path) for path in paths)
        total += PROXY_COMMAND_DESCRIPTORS if proxied[paths] else 1
    return total


def _mentions_proxy_command(path: Path) -> bool:
    try:
        return "proxycommand" in path.read_text(errors="replace").lower()
    except OSError:
        return False  # the connection reports it, for the host
