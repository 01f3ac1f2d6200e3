"""The lab fleet: N real sshd hosts on loopback, an inventory for them, and fault controls.

``Lab.up`` writes into the lab dir: ``lab.json`` (what was started, so ``down`` stops exactly
that), the client key, ``known_hosts``, an OpenSSH ``ssh_config`` and ``inventory.yaml``. The test
suite uses the same class as a fixture and adds faults: stop a host, freeze and thaw it, kill its
sshd, restart it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import ipaddress
import json
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import LabError
from orchestrator.lab import processes
from orchestrator.lab.inventory_file import render_inventory
from orchestrator.lab.sshd import (
    PRIVATE_MOUNTS,
    SshdHost,
    can_namespace,
    find_sshd,
    free_port,
    generate_key,
)

DEFAULT_BASE_ADDRESS = "127.42.0.0"
HOSTS_PER_BLOCK = 200  # addresses .10 to .209 of each /24


@dataclass
class LabHost:
    name: str
    address: str
    port: int
    pid: int
    started: int | None
    namespaces: list[str] = field(default_factory=list)


def host_address(base: str, index: int) -> str:
    """The loopback address of the ``index``-th host (0-based); always inside 127.0.0.0/8."""
    network = ipaddress.ip_network("127.0.0.0/8")
    address = (
        ipaddress.ip_address(base) + (index // HOSTS_PER_BLOCK) * 256 + index % HOSTS_PER_BLOCK + 10
    )
    if address not in network:
        raise LabError(f"lab address {address} is outside 127.0.0.0/8")
    return str(address)


class Lab:
    """A lab fleet rooted at ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.hosts: list[LabHost] = []
        self.namespaced = False
        self.session_path: Path | None = None
        self.user = getpass.getuser()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- files -----------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.directory / "lab.json"

    @property
    def inventory_path(self) -> Path:
        return self.directory / "inventory.yaml"

    @property
    def client_key(self) -> Path:
        return self.directory / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "authorized_keys"

    def host_dir(self, name: str) -> Path:
        return self.directory / "hosts" / name

    def deployment_root(self, name: str) -> str:
        if self.namespaced:
            return "/opt/orchestrator/deployment-root"
        return str(self.host_dir(name) / "root" / "opt" / "orchestrator" / "deployment-root")

    def host_path(self, name: str, path: str) -> Path:
        """Where a path as seen on host ``name`` lives in the controller's filesystem."""
        if self.namespaced:
            for target in ("/srv", "/opt", "/var/lib"):
                if path == target or path.startswith(target + "/"):
                    sshd = self._sshd(self.host(name))
                    return sshd.mount_source(target) / path[len(target) :].lstrip("/")
        return Path(path)

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"no lab host named '{name}'")

    def _sshd(self, host: LabHost) -> SshdHost:
        return SshdHost(
            host.name,
            host.address,
            host.port,
            self.host_dir(host.name),
            self.authorized_keys,
            self.namespaced,
            self.session_path,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> Lab:
        lab = cls(directory)
        if not lab.state_file.exists():
            raise LabError(f"no lab in {lab.directory} (start one with 'orchestrator lab up')")
        state = json.loads(lab.state_file.read_text())
        lab.namespaced = state["namespaced"]
        session_path = state.get("session_path")
        lab.session_path = Path(session_path) if session_path else None
        lab.user = state["user"]
        lab.hosts = [LabHost(**host) for host in state["hosts"]]
        return lab

    def save(self) -> None:
        state = {
            "namespaced": self.namespaced,
            "session_path": str(self.session_path) if self.session_path else None,
            "user": self.user,
            "hosts": [dataclasses.asdict(host) for host in self.hosts],
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def up(
        cls,
        directory: Path,
        count: int,
        *,
        base_address: str = DEFAULT_BASE_ADDRESS,
        namespaced: bool | None = None,
        session_path: Path | None = None,
    ) -> Lab:
        """Start ``count`` hosts named web-1..web-N and write the files that describe them.

        With ``session_path``, that directory is all the hosts' sessions have on their PATH, and
        its ``sh`` reads their commands (``toolbox.busybox``: a busybox host)."""
        if count < 1:
            raise LabError("a lab needs at least one host")
        lab = cls(directory)
        if lab.state_file.exists() and any(alive for _, alive in cls.load(directory).status()):
            raise LabError(
                f"a lab is already running in {lab.directory}: "
                f"run 'orchestrator lab down --dir {lab.directory}' first"
            )
        sshd = find_sshd()
        lab.directory.mkdir(parents=True, exist_ok=True)
        lab.namespaced = can_namespace() if namespaced is None else namespaced
        lab.session_path = session_path.resolve() if session_path else None
        client_public = generate_key(lab.client_key, "orchestrator-lab-client")
        lab.authorized_keys.write_text(client_public + "\n")
        specs = []
        known = []
        for index in range(count):
            address = host_address(base_address, index)
            spec = SshdHost(
                f"web-{index + 1}",
                address,
                free_port(address),
                lab.host_dir(f"web-{index + 1}"),
                lab.authorized_keys,
                lab.namespaced,
                lab.session_path,
            )
            known.append((spec, spec.prepare()))
            specs.append(spec)
        try:
            lab._start_all(sshd, specs)
        except LabError:
            lab.down()
            raise
        lab.known_hosts.write_text(
            "".join(
                f"[{spec.address}]:{host.port} {public}\n"
                for (spec, public), host in zip(known, lab.hosts, strict=True)
            )
        )
        lab._write_client_files()
        lab.save()
        return lab

    def _start_all(self, sshd: str, specs: list[SshdHost]) -> None:
        started = [(spec, spec.spawn(sshd)) for spec in specs]
        for spec, process in started:
            for attempt in range(3):
                try:
                    spec.wait_ready(process)
                    break
                except LabError:
                    # Another process may have taken the port we picked: pick again.
                    if attempt == 2 or "in use" not in spec.log_path.read_text(errors="replace"):
                        raise
                    spec = dataclasses.replace(spec, port=free_port(spec.address))
                    spec.prepare()
                    process = spec.spawn(sshd)
            self._record(spec, process)

    def _record(self, spec: SshdHost, process: subprocess.Popen[bytes]) -> None:
        self._children[process.pid] = process
        namespace = processes.mount_namespace(process.pid) if self.namespaced else None
        host = LabHost(
            spec.name,
            spec.address,
            spec.port,
            process.pid,
            processes.start_time(process.pid),
            [namespace] if namespace else [],
        )
        self.hosts = [h for h in self.hosts if h.name != spec.name] + [host]
        self.hosts.sort(key=lambda h: int(h.name.rsplit("-", 1)[1]))

    def _write_client_files(self) -> None:
        self.ssh_config.write_text(
            "".join(
                f"Host {host.name}\n  HostName {host.address}\n  Port {host.port}\n"
                f"  User {self.user}\n"
                f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes\n\n"
                for host in self.hosts
            )
        )
        self.inventory_path.write_text(render_inventory(self))

    # -- inspection and shutdown -----------------------------------------------------------------

    def listener_alive(self, host: LabHost) -> bool:
        return processes.is_same_process(host.pid, host.started) and processes.alive(host.pid)

    def host_pids(self, name: str) -> set[int]:
        """Every process host ``name`` owns: its sshd, that sshd's descendants, its namespaces."""
        host = self.host(name)
        pids: set[int] = set()
        if self.listener_alive(host):
            pids.add(host.pid)
            pids |= processes.descendants(host.pid)
        private = PRIVATE_MOUNTS[0]
        for namespace in host.namespaces:
            source = self._sshd(host).mount_source(private)
            pids |= processes.in_namespace(namespace, private, source)
        return pids

    def status(self) -> list[tuple[LabHost, bool]]:
        return [(host, self.listener_alive(host)) for host in self.hosts]

    def down(self) -> int:
        """Stop every process the lab started; return how many there were."""
        pids: set[int] = set()
        for host in self.hosts:
            pids |= self.host_pids(host.name)
        processes.terminate(pids)
        self._reap()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return len(pids)

    def _reap(self) -> None:
        for process in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self._children.clear()

    # -- faults (used by the tests) --------------------------------------------------------------

    def stop_host(self, name: str) -> None:
        """The host goes down: all its processes end, connections drop."""
        processes.terminate(self.host_pids(name))
        self._reap_exited()

    def freeze(self, name: str) -> None:
        """SIGSTOP every process of the host: it stops answering but keeps its connections."""
        processes.signal_all(self.host_pids(name), signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        processes.signal_all(self.host_pids(name), signal.SIGCONT)

    def kill_sshd(self, name: str) -> None:
        """SIGKILL the host's sshd processes (listener and sessions); hooks run on detached."""
        host = self.host(name)
        pids = {pid for pid in self.host_pids(name) if processes.command_name(pid) == "sshd"}
        processes.signal_all(
            pids | ({host.pid} if self.listener_alive(host) else set()), signal.SIGKILL
        )
        self._reap_exited()

    def restart(self, name: str) -> None:
        """Start the host's sshd again (same address, port and key) after a stop or kill."""
        host = self.host(name)
        if self.listener_alive(host):
            processes.terminate({host.pid})
            self._reap_exited()
        spec = self._sshd(host)
        process = spec.start(find_sshd())
        old_namespaces = host.namespaces
        self._record(spec, process)
        self.host(name).namespaces = [*old_namespaces, *self.host(name).namespaces]
        self.save()

    def _reap_exited(self) -> None:
        for pid, process in list(self._children.items()):
            if process.poll() is not None:
                del self._children[pid]
