"""A host lock taken over in the middle of a rollout, on real sshd hosts: that host stops."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from orchestrator.engine.deployment import DeploymentRunner
from orchestrator.engine.remote import LockReply, RemoteHost
from orchestrator.engine.rollout import Rollout
from orchestrator.events import Event, LifecycleEventStarted, Notice
from orchestrator.hostproto import HOST_PROGRAMS
from orchestrator.hostproto.holder import LockHolder
from orchestrator.hostproto.replies import parse_lock
from orchestrator.hostproto.requests import LockMode, LockRequest
from orchestrator.install_plan import build_install_plan
from orchestrator.lab.fleet import Lab
from orchestrator.models.deployment_config import PREDEFINED
from orchestrator.models.inventory import load_inventory
from orchestrator.models.results import Deployment, RevisionInfo
from orchestrator.revision import build_revision
from orchestrator.state.base import open_store
from orchestrator.transport.ssh import SshTransport
from tests.integration.helpers import NO_RETRY, waiting_hook
from tests.integration.revisions import script_bundle

GO = "/srv/go-lock-lost"
THIEF = "d-THIEF00001"


def _steal(lab: Lab, host: str, group_id: str) -> LockReply:
    """What another controller does: break the host's lock (`lock release --force`), then take
    it with a rollout of its own."""

    async def go() -> LockReply:
        spec = load_inventory(lab.inventory_path).resolve_host(host)
        transport = SshTransport(NO_RETRY, script=HOST_PROGRAMS)
        session = await transport.connect(spec)
        try:
            remote = RemoteHost(session, spec, group_id)
            assert (await remote.lock(LockMode.BREAK)).state == "broken"
            acquire = LockRequest(
                LockMode.ACQUIRE,
                remote.root,
                group_id,
                THIEF,
                120,
                LockHolder(holder="thief@elsewhere"),
            )
            return parse_lock(await session.call(acquire.call()))
        finally:
            await session.close()
            await transport.close()

    return asyncio.run(go())


def test_a_host_whose_lock_is_taken_over_mid_rollout_stops_there(
    small_lab: Lab, tmp_path: Path
) -> None:
    """Both hosts at once; while web-1's AfterInstall runs, another controller takes web-1's lock.
    The hooks go on once the rollout has said so: web-1's AfterInstall ends, then web-1 fails
    naming the new holder and runs nothing more (no ApplicationStart in its log, no record of
    its outcome), the thief's lock is left alone; web-2 deploys."""
    inventory = load_inventory(small_lab.inventory_path)
    group_id = inventory.group_id("hello", "web")
    hooks = {event: waiting_hook(GO, 60) for event in ("AfterInstall", "ApplicationStart")}
    bundle = script_bundle(tmp_path, "lost", hooks)
    revision = build_revision(str(bundle), tmp_path / "cache")
    deployment = Deployment(
        "d-LOSTLOCK01",
        "hello",
        "web",
        group_id,
        RevisionInfo(str(bundle), revision.sha256, revision.size, revision.kind),
        "CodeDeployDefault.AllAtOnce",
    )
    rollout = Rollout(
        deployment,
        revision,
        build_install_plan(revision.appspec, revision.entries, "DISALLOW"),
        PREDEFINED["CodeDeployDefault.AllAtOnce"],
        [inventory.resolve_host("web-1"), inventory.resolve_host("web-2")],
        hook_grace=1,
        lock_ttl=8,  # a heartbeat every 2 s, each answered within 2 s even on a busy machine
    )
    stolen: list[asyncio.Future[LockReply]] = []
    notices: list[Notice] = []

    def sink(event: Event) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(event, LifecycleEventStarted) and (event.target.host, event.event.name) == (
            "web-1",
            "AfterInstall",
        ):
            stolen.append(loop.run_in_executor(None, _steal, small_lab, "web-1", group_id))
        if isinstance(event, Notice) and event.host == "web-1" and "taken over" in event.message:
            notices.append(event)
            for host in ("web-1", "web-2"):
                small_lab.host_path(host, GO).write_text("go\n")

    async def go() -> Deployment:
        store = open_store(os.environ["ORCHESTRATOR_STATE"])
        try:
            runner = DeploymentRunner(rollout, SshTransport(script=HOST_PROGRAMS), [store, sink])
            return await asyncio.wait_for(runner.run(), timeout=120)
        finally:
            store.close()

    result = asyncio.run(go())
    assert stolen and stolen[0].result().state == "acquired"
    web_1, web_2 = result.targets["web-1"], result.targets["web-2"]
    assert web_2.status == "Succeeded"
    assert web_1.status == "Failed"
    assert web_1.event("AfterInstall").status == "Succeeded"
    failed = web_1.event("ApplicationStart")
    assert failed.status == "Failed" and failed.diagnostics is not None
    assert failed.diagnostics.error_code == "UnknownError"
    assert failed.diagnostics.message.startswith(
        f"the deployment group's lock on this host was taken over by {THIEF} "
        "(thief@elsewhere, pid ?)"
    ), failed.diagnostics.message
    assert web_1.event("ValidateService").status == "Skipped"
    assert [n.message for n in notices] == [failed.diagnostics.message]
    root = small_lab.deployment_root("web-1")
    log = small_lab.host_path("web-1", f"{root}/{group_id}/{deployment.deployment_id}/logs")
    text = (log / "scripts.log").read_text()
    assert "LifecycleEvent - AfterInstall" in text
    assert "ApplicationStart" not in text
    # No record of its outcome over the new holder's; its own ongoing marker gone.
    record = small_lab.host_path("web-1", f"{root}/deployment-instructions")
    assert not (record / f"{group_id}_last_deployment").exists()
    assert not small_lab.host_path("web-1", f"{root}/ongoing-deployment/d-LOSTLOCK01").exists()
    lock = small_lab.host_path("web-1", f"{root}/locks/{group_id}")
    assert (lock / "deployment").read_text() == f"{THIEF}\n"  # ours was released, not theirs
    assert not small_lab.host_path("web-2", f"{root}/locks/{group_id}").exists()
    web_2_record = small_lab.host_path("web-2", f"{root}/deployment-instructions")
    assert "d-LOSTLOCK01 Succeeded" in (web_2_record / f"{group_id}_last_deployment").read_text()
