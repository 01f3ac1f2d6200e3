"""The benchmark's workload with Fabric (a peer), run from its own virtualenv.

What a Fabric user writes for this deployment: one connection per host, every host at once (a
thread each, as Fabric's ThreadingGroup), the bundle `put` over SFTP, then one `run` per step
(unpack, ApplicationStop, BeforeInstall, install the files, AfterInstall, ApplicationStart,
ValidateService, record the release, remove older releases: bench/peer_steps.py), with the same
host-side commands as the floor. Fabric is never a project dependency:
bench/rollout.py --peers fabric installs it into a virtualenv of the benchmark's own.

    VENV/bin/python bench/fabric_deploy.py HOSTS_JSON BUNDLE_TAR DEPLOYMENT_ID
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fabric import Connection  # type: ignore[import-not-found, unused-ignore]
from paramiko import RejectPolicy  # type: ignore[import-untyped, import-not-found, unused-ignore]
from peer_steps import bundle_path, prepare, steps


def deploy(host: dict[str, Any], bundle: str, deployment_id: str) -> None:
    connection = Connection(
        host["address"],
        port=int(host["port"]),
        user=host["user"],
        connect_kwargs={
            "key_filename": host["key"],
            "look_for_keys": False,
            "allow_agent": False,
        },
    )
    connection.client.load_host_keys(host["known_hosts"])
    connection.client.set_missing_host_key_policy(RejectPolicy())
    with connection:
        connection.run(prepare(deployment_id), hide=True)
        connection.put(bundle, bundle_path(deployment_id))
        for step in steps(deployment_id):
            connection.run(step, hide=True)


def main() -> None:
    hosts = json.loads(Path(sys.argv[1]).read_text())
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        for done in [pool.submit(deploy, h, sys.argv[2], sys.argv[3]) for h in hosts]:
            done.result()


if __name__ == "__main__":
    main()
