"""The floor: the least any SSH push tool can do for the benchmark's workload.

One connection per host and one channel per host that receives the bundle on stdin, unpacks it,
runs the hooks in order and installs the files; no records, no locks, no checks beyond the
hooks' own. Run as its own process so the benchmark measures its CPU and memory like
orchestrator's.

    python bench/floor.py HOSTS_JSON BUNDLE_TAR DEPLOYMENT_ID
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path

import asyncssh

REMOTE = r"""
set -e
work=/srv/floor-work/$1
rm -rf "$work"; mkdir -p "$work/archive"
cat > "$work/bundle.tar"
tar -x --no-same-owner -f "$work/bundle.tar" -C "$work/archive"
cd "$work/archive"
export DEPLOYMENT_ID=$1 APP_ROOT=/srv/floor-app STATE_DIR=/srv/floor-state
if [ -f /srv/floor-state/current ]; then sh "$(cat /srv/floor-state/current)/scripts/stop.sh"; fi
sh scripts/before_install.sh
rm -rf /srv/floor-app; mkdir -p /srv/floor-app; cp -a app/. /srv/floor-app/
sh scripts/after_install.sh
sh scripts/start.sh
sh scripts/validate.sh
echo "$work/archive" > /srv/floor-state/current
for old in /srv/floor-work/*; do [ "$old" = "$work" ] || rm -rf "$old"; done
"""


async def deploy(
    host: dict[str, object], bundle: Path, deployment_id: str, limit: asyncio.Semaphore
) -> None:
    async with limit:
        connection = await asyncssh.connect(
            str(host["address"]),
            int(str(host["port"])),
            username=str(host["user"]),
            client_keys=[str(host["key"])],
            known_hosts=str(host["known_hosts"]),
            config=None,
            # The cheapest cipher for both ends where the CPU has AES instructions (orchestrator
            # prefers it too); asyncssh's default, chacha20-poly1305, costs both ends more.
            encryption_algs=["aes128-gcm@openssh.com"],
        )
    async with connection:
        command = f"sh -c {shlex.quote(REMOTE)} floor {shlex.quote(deployment_id)}"
        result = await connection.run(command, stdin=str(bundle), check=False, encoding=None)
        if result.exit_status != 0:
            raise SystemExit(f"{host['name']}: exit {result.exit_status}: {result.stderr!r}")


async def main() -> None:
    hosts = json.loads(Path(sys.argv[1]).read_text())
    limit = asyncio.Semaphore(int(sys.argv[4]) if len(sys.argv) > 4 else 32)
    await asyncio.gather(*(deploy(h, Path(sys.argv[2]), sys.argv[3], limit) for h in hosts))


if __name__ == "__main__":
    asyncio.run(main())
