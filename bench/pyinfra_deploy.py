"""The benchmark's workload with pyinfra (a peer), run from its own virtualenv.

What a pyinfra user writes for this deployment: an inventory of the lab's hosts (key, port and
known_hosts from the lab, strict host key checking), a deploy of `server.shell` operations and a
`files.put` of the bundle, the same steps as the Fabric peer, every host at once (`--parallel`
as many as there are hosts). This script writes both files next to HOSTS_JSON and then becomes
pyinfra's command line, so the benchmark measures pyinfra's own process.

    VENV/bin/python bench/pyinfra_deploy.py HOSTS_JSON BUNDLE_TAR DEPLOYMENT_ID
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEPLOY = """\
import os
import sys

sys.path.insert(0, {bench!r})
from peer_steps import bundle_path, prepare, steps
from pyinfra.operations import files, server

deployment_id = os.environ["BENCH_DEPLOYMENT_ID"]
server.shell(name="prepare", commands=[prepare(deployment_id)])
files.put(name="upload", src=os.environ["BENCH_BUNDLE"], dest=bundle_path(deployment_id))
for number, step in enumerate(steps(deployment_id)):
    server.shell(name=f"step {{number}}", commands=[step])
"""


def main() -> None:
    hosts_file, bundle, deployment_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    hosts = json.loads(hosts_file.read_text())
    inventory = hosts_file.with_name("pyinfra_inventory.py")
    inventory.write_text(
        "hosts = "
        + repr(
            [
                (
                    host["name"],
                    {
                        "ssh_hostname": host["address"],
                        "ssh_port": int(host["port"]),
                        "ssh_user": host["user"],
                        "ssh_key": host["key"],
                        "ssh_known_hosts_file": host["known_hosts"],
                        "ssh_strict_host_key_checking": "yes",
                        "ssh_allow_agent": False,
                        "ssh_look_for_keys": False,
                    },
                )
                for host in hosts
            ]
        )
        + "\n"
    )
    deploy = hosts_file.with_name("pyinfra_deploy.py")
    deploy.write_text(DEPLOY.format(bench=str(Path(__file__).resolve().parent)))
    os.environ.update(BENCH_DEPLOYMENT_ID=deployment_id, BENCH_BUNDLE=bundle)
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    os.execv(  # noqa: S606 - the benchmark measures pyinfra's own process
        pyinfra,
        [pyinfra, "-y", "--parallel", str(len(hosts)), str(inventory), str(deploy)],
    )


if __name__ == "__main__":
    main()
