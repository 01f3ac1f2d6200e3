"""Running commands on lab hosts through orchestrator's own SSH transport."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.rollout import Rollout
from orchestrator.events import Event, LifecycleEventStarted
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.install_plan import build_install_plan
from orchestrator.lab.fleet import Lab
from orchestrator.models.deployment_config import PREDEFINED
from orchestrator.models.hosts import HostSpec
from orchestrator.models.inventory import load_inventory
from orchestrator.models.results import Deployment, RevisionInfo, new_deployment_id
from orchestrator.revision import build_revision
from orchestrator.state.base import open_store
from orchestrator.transport.base import CommandResult
from orchestrator.transport.ssh import SshTransport
from orchestrator.transport.ssh_limits import SshLimits

NO_RETRY = SshLimits(connect_retries=0)


def host_spec(lab: Lab, name: str, **ssh_changes: Any) -> HostSpec:
    spec = load_inventory(lab.inventory_path).resolve_host(name)
    if ssh_changes:
        spec = dataclasses.replace(spec, ssh=dataclasses.replace(spec.ssh, **ssh_changes))
    return spec


def served_addresses(specs: list[HostSpec]) -> list[str]:
    """The address each host's sshd saw itself reached on, all connected through one transport
    (so hosts behind the same bastion share its connection)."""

    async def connect_all() -> list[str]:
        transport = SshTransport(NO_RETRY, script=HOST_PROGRAMS)
        sessions = await asyncio.gather(*(transport.connect(spec) for spec in specs))
        try:
            results = await asyncio.gather(*(s.run('echo "$SSH_CONNECTION"') for s in sessions))
            return [r.stdout.split()[2] for r in results]
        finally:
            for session in sessions:
                await session.close()
            await transport.close()

    return asyncio.run(connect_all())


def run_on(host: HostSpec, command: str, transport: SshTransport | None = None) -> CommandResult:
    async def go() -> CommandResult:
        session = await (transport or SshTransport(NO_RETRY, script=HOST_PROGRAMS)).connect(host)
        try:
            return await session.run(command, timeout=30)
        finally:
            await session.close()

    return asyncio.run(go())


@dataclasses.dataclass
class RolloutResult:
    exit_code: int
    document: dict[str, Any]
    stderr: str
    events: list[dict[str, Any]]

    def target(self, host: str) -> dict[str, Any]:
        return next(t for t in self.document["targets"] if t["host"] == host)

    def event(self, host: str, name: str) -> dict[str, Any]:
        events = self.target(host)["lifecycleEvents"]
        return next(e for e in events if e["lifecycleEventName"] == name)

    def statuses(self) -> dict[str, str]:
        return {t["host"]: t["status"] for t in self.document["targets"]}

    def max_concurrency(self) -> int:
        running = peak = 0
        for record in self.events:
            if record["type"] == "TargetStarted":
                running += 1
                peak = max(peak, running)
            elif record["type"] == "TargetFinished":
                running -= 1
        return peak


def rollout(
    lab: Lab, revision: Path | str, *args: str, group: str = "web", inventory: Path | None = None
) -> RolloutResult:
    """``orchestrator rollout --output json`` in-process, with its NDJSON event stream."""
    events_file = lab.directory / "events.ndjson"
    result = CliRunner().invoke(
        cli,
        [
            "-i",
            str(inventory or lab.inventory_path),
            "rollout",
            "-a",
            "hello",
            "-g",
            group,
            "-r",
            str(revision),
            "--output",
            "json",
            "--events",
            str(events_file),
            *args,
        ],
    )
    if result.exit_code not in (0, 4, 5, 6):
        raise AssertionError(
            f"rollout exited {result.exit_code}: {result.output}\n{result.exception!r}"
        )
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    return RolloutResult(result.exit_code, json.loads(result.stdout), result.stderr, events)


def fetch(address: str, path: str = "/index.html", port: int = 8080) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def start_orchestrator(args: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    """``python -m orchestrator ARGS`` as a separate process (another terminal, another CI job)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "stdout").open("wb") as out, (workdir / "stderr").open("wb") as err:
        # The child keeps its own copies of the descriptors.
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )


def wait_for_event(
    events_file: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The first NDJSON record matching ``predicate``; waits for it (bounded) as it is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events_file.exists():
            for line in events_file.read_text().splitlines():
                if line.strip() and predicate(json.loads(line)):
                    return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"no matching event in {events_file} within {timeout}s")


def ctrl_c_twice(process: subprocess.Popen[bytes], events: Path) -> int:
    """Ctrl-C, then once the rollout says it is stopping a second one (which terminates the
    running hooks): the rollout's exit code."""
    process.send_signal(signal.SIGINT)
    wait_for_event(events, lambda r: r["type"] == "Notice" and "stopping" in r["message"])
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def event_started(host: str, name: str) -> Callable[[dict[str, Any]], bool]:
    def matches(record: dict[str, Any]) -> bool:
        return (
            record["type"] == "LifecycleEventStarted"
            and record.get("host") == host
            and record["lifecycleEvent"]["lifecycleEventName"] == name
        )

    return matches


def waiting_hook(go_file: str, seconds: int = 120) -> str:
    """A hook body that waits (bounded) until ``go_file`` exists on the host."""
    tenths = seconds * 10
    return (
        f"i=0\nwhile [ ! -f {go_file} ] && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\n"
        f"[ -f {go_file} ] && echo done waiting\n"
    )


def engine_run(
    lab: Lab,
    bundle: Path,
    tmp_path: Path,
    on_event: str,
    action: Callable[[], None],
    inventory_path: Path | None = None,
) -> Deployment:
    """A one-host deployment through the engine API; ``action`` runs in a thread when web-1 starts
    ``on_event``."""
    inventory = load_inventory(inventory_path or lab.inventory_path)
    revision = build_revision(str(bundle), tmp_path / "cache")
    deployment = Deployment(
        new_deployment_id(),
        "hello",
        "web",
        inventory.group_id("hello", "web"),
        RevisionInfo(str(bundle), revision.sha256, revision.size, revision.kind),
        "CodeDeployDefault.OneAtATime",
    )
    plan = build_install_plan(revision.appspec, revision.entries, "DISALLOW")
    actions: list[asyncio.Future[None]] = []

    def sink(event: Event) -> None:
        if (
            isinstance(event, LifecycleEventStarted)
            and event.event.name == on_event
            and event.target.host == "web-1"
        ):
            actions.append(asyncio.get_running_loop().run_in_executor(None, action))

    async def go() -> Deployment:
        rollout_ = Rollout(
            deployment,
            revision,
            plan,
            PREDEFINED["CodeDeployDefault.OneAtATime"],
            [inventory.resolve_host("web-1")],
            hook_grace=1,
        )
        store = open_store(os.environ["ORCHESTRATOR_STATE"])  # as the CLI records it
        try:
            done = await DeploymentRunner(
                rollout_, SshTransport(script=HOST_PROGRAMS), [store, sink]
            ).run()
        finally:
            store.close()
        await asyncio.gather(*actions)
        return done

    result = asyncio.run(go())
    assert actions, f"{on_event} never started"
    return result


def start_waiting_rollout(
    lab: Lab, tmp_path: Path, go_file: str, *extra: str
) -> tuple[subprocess.Popen[bytes], Path, str]:
    """A rollout in another process whose AfterInstall waits for ``go_file``; returns once web-1
    is in that hook, with the process, its NDJSON events file and the deployment id."""
    from tests.integration.revisions import script_bundle

    bundle = script_bundle(tmp_path, "slow", {"AfterInstall": waiting_hook(go_file)})
    events = tmp_path / "events.ndjson"
    process = start_orchestrator(
        [
            "-i",
            str(lab.inventory_path),
            "rollout",
            "-a",
            "hello",
            "-g",
            "web",
            "-r",
            str(bundle),
            "--events",
            str(events),
            *extra,
        ],
        tmp_path / "run",
    )
    try:
        deployment_id = str(
            wait_for_event(events, event_started("web-1", "AfterInstall"))["deploymentId"]
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, events, deployment_id
