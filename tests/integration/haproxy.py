"""A real HAProxy (Debian's package) on loopback in front of a lab fleet's hello-web servers, and a
client that sends requests through it and counts what failed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.lab.fleet import Lab
from tests.integration.services import poll_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
WEB_PORT = 8080  # hello-web's


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _config(lab: Lab, frontend: int, api: int) -> str:
    # HAProxy's defaults where it has them (3 retries to the same server, no redispatch): a
    # request to a stopped server fails unless the load balancer was told first.
    servers = "".join(
        f"    server {host.name} {host.address}:{WEB_PORT} check\n" for host in lab.hosts
    )
    return (
        "global\n"
        f"    stats socket ipv4@127.0.0.1:{api} level admin\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 2s\n"
        "    timeout client 10s\n"
        "    timeout server 10s\n"
        "    retries 3\n"
        "frontend web\n"
        f"    bind 127.0.0.1:{frontend}\n"
        "    default_backend hello\n"
        "backend hello\n"
        "    option httpchk GET /index.html\n"
        "    default-server inter 300ms fall 2 rise 2\n"
        f"{servers}"
    )


@dataclass
class HAProxyProcess:
    frontend: int
    runtime_api: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.frontend}/index.html"

    def command(self, line: str) -> str:
        host, port = self.runtime_api.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def statuses(self) -> dict[str, str]:
        rows = self.command("show stat hello 4 -1").lstrip("# ").splitlines()
        header = rows[0].split(",")
        return {
            row.split(",")[header.index("svname")]: row.split(",")[header.index("status")]
            for row in rows[1:]
            if row
        }

    def wait_all_up(self, timeout: float = 30.0) -> None:
        seen: dict[str, str] = {}

        def all_up() -> bool | None:
            seen.clear()
            seen.update(self.statuses())
            return True if seen and set(seen.values()) == {"UP"} else None

        if poll_until(all_up, self.process, timeout) is None:
            raise AssertionError(f"HAProxy's servers are not all UP: {seen}")


@contextmanager
def haproxy_in_front(lab: Lab, directory: Path) -> Iterator[HAProxyProcess]:
    """HAProxy balancing over every lab host's hello-web (which must be running)."""
    directory.mkdir(parents=True, exist_ok=True)
    frontend, api = free_port(), free_port()
    config = directory / "haproxy.cfg"
    config.write_text(_config(lab, frontend, api))
    log = (directory / "haproxy.log").open("wb")
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        proxy = HAProxyProcess(frontend, f"127.0.0.1:{api}", process)
        proxy.wait_all_up()
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@dataclass
class Client:
    """Requests through the load balancer, one after another, until stopped."""

    url: str
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sent += 1
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    body = response.read().decode()
                if "hello-web" not in body:
                    self.failures.append(f"{response.status}: {body[:80]!r}")
            except (urllib.error.URLError, OSError) as exc:
                self.failures.append(str(exc))

    def __enter__(self) -> Client:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
