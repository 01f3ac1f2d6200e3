"""A real Prometheus (Debian's package) on loopback, scraping each lab host's hello-web for the
metrics file the deployed revision serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.lab.fleet import Lab
from tests.integration.haproxy import WEB_PORT, free_port
from tests.integration.services import poll_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class PrometheusProcess:
    url: str
    process: subprocess.Popen[bytes]

    def query(self, promql: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=5) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", document
        return list(document["data"]["result"])

    def wait_for(self, promql: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The query's result once it is non-empty (bounded)."""
        result = poll_until(lambda: self.query(promql) or None, self.process, timeout, 0.2)
        if result is None:
            raise AssertionError(f"Prometheus: {promql!r} stayed empty for {timeout}s")
        return result


@contextmanager
def prometheus_scraping(lab: Lab, directory: Path) -> Iterator[PrometheusProcess]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "hello-web",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"{host.address}:{WEB_PORT}" for host in lab.hosts]}
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={directory / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield PrometheusProcess(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
