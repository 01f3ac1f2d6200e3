"""What asyncssh alone costs the controller per host: connect, then send the bundle's bytes.

No orchestrator code runs: one connection per host (at most 32 handshakes at once, as
orchestrator), one channel that sends SIZE bytes to `cat > /dev/null`, with each cipher
orchestrator offers. It prints the controller's user and system CPU per host for the handshakes
and for the upload, so the rollout benchmark's CPU per host can be read against what the SSH
library needs before any deployment work is done.

    python bench/ssh_cost.py --hosts 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
from pathlib import Path

import asyncssh

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.lab.fleet import Lab, LabHost  # noqa: E402
from orchestrator.transport.ssh_limits import PREFERRED_CIPHERS  # noqa: E402

CHUNK = 32 * 1024


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def measure(lab: Lab, cipher: str, size: int) -> tuple[float, float, float, float]:
    """User and system CPU seconds for the handshakes, then for the uploads."""
    data = os.urandom(size)
    handshakes = asyncio.Semaphore(32)

    async def connect(host: LabHost) -> asyncssh.SSHClientConnection:
        async with handshakes:
            return await asyncssh.connect(
                host.address,
                host.port,
                username=lab.user,
                client_keys=[str(lab.client_key)],
                known_hosts=str(lab.known_hosts),
                config=None,
                encryption_algs=[cipher],
            )

    async def upload(connection: asyncssh.SSHClientConnection) -> None:
        process = await connection.create_process("cat > /dev/null", encoding=None)
        for offset in range(0, size, CHUNK):
            process.stdin.write(data[offset : offset + CHUNK])
            await process.stdin.drain()
        process.stdin.write_eof()
        await process.wait(check=True)

    start = cpu()
    connections = await asyncio.gather(*(connect(host) for host in lab.hosts))
    connected = cpu()
    await asyncio.gather(*(upload(c) for c in connections))
    uploaded = cpu()
    for connection in connections:
        connection.close()
    return (
        connected[0] - start[0],
        connected[1] - start[1],
        uploaded[0] - connected[0],
        uploaded[1] - connected[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--megabytes", type=float, default=5.0, help="bytes sent per host")
    args = parser.parse_args()
    size = int(args.megabytes * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="orchestrator-ssh-cost-") as workdir:
        lab = Lab.up(Path(workdir) / "lab", args.hosts, base_address="127.62.0.0")
        try:
            for cipher in PREFERRED_CIPHERS[:3]:
                user_c, sys_c, user_u, sys_u = asyncio.run(measure(lab, cipher, size))
                per_host = 1000 / args.hosts
                print(
                    f"{cipher:<32} N={args.hosts:<5} connect {user_c * per_host:5.1f} user "
                    f"+ {sys_c * per_host:4.1f} sys ms/host   upload {args.megabytes:g} MB "
                    f"{user_u * per_host:5.1f} user + {sys_u * per_host:4.1f} sys ms/host",
                    flush=True,
                )
        finally:
            lab.down()


if __name__ == "__main__":
    main()
