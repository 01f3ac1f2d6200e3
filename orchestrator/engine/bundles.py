"""How hosts get the bundle in DownloadBundle: pushed over their SSH connection, or fetched from
the group's bundle store.

With a store, the controller uploads the bundle once per deployment (in a thread: the hosts'
connections and earlier events go on meanwhile), keyed by its sha256, and only when a host
lacks it: a redeploy or a rollback to hosts that hold it uploads nothing. Each host that lacks
it then fetches it with a presigned GET URL, with the ``curl`` or ``wget`` its probe found. The
URL's query string is a credential: it reaches the host on its stdin, never on a command line
or in a file, and nothing the host says back is kept without it being cut out. A host that
cannot fetch it fails DownloadBundle with the store's error, or has it pushed when the store's
``fallback`` is ``push``, with a note saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from orchestrator.engine.remote import RemoteHost
from orchestrator.errors import BundleStoreError
from orchestrator.hostproto.replies import Probe
from orchestrator.hostproto.requests import FETCH_FAILED
from orchestrator.revision import Revision
from orchestrator.transport.base import CommandResult

Notify = Callable[[str, str | None], None]  # (message, host or None)


class BundleStore(Protocol):
    """Where hosts fetch bundles from (``integrations/bundle_store.py``)."""

    fallback_push: bool

    def described(self) -> str: ...

    def object_url(self, sha256: str) -> str: ...

    def upload(self, path: Path, sha256: str, size: int) -> bool: ...

    def presign(self, sha256: str) -> str: ...


def _hidden(text: str, url: str) -> str:
    """``text`` without ``url``'s query, should a host have echoed it."""
    query = urlsplit(url).query
    return text.replace(query, "<presigned query>") if query else text


class BundleDelivery:
    """One deployment's way of getting its bundle to its hosts."""

    def __init__(
        self,
        revision: Revision,
        store: BundleStore | None = None,
        notify: Notify = lambda message, host: None,
    ) -> None:
        self.revision = revision
        self.store = store
        self.notify = notify
        self._upload: asyncio.Task[None] | None = None

    def prepare(self, probes: Iterable[Probe]) -> None:
        """Start the upload to the store, in a thread, when a probed host lacks the bundle."""
        probes = list(probes)
        if self.store is None or self._upload is not None or not probes:
            return
        sha256 = self.revision.sha256
        if all(probe.bundle(sha256) for probe in probes):
            self.notify(f"every host holds the bundle: nothing uploaded to {self._where()}", None)
            return
        self._upload = asyncio.create_task(self._uploaded(self.store))

    def _where(self) -> str:
        assert self.store is not None
        return self.store.object_url(self.revision.sha256)

    async def _uploaded(self, store: BundleStore) -> None:
        revision = self.revision
        uploaded = await asyncio.to_thread(
            store.upload, revision.tar_path, revision.sha256, revision.size
        )
        said = "uploaded the bundle to" if uploaded else "the bundle is already in"
        self.notify(f"{said} {store.described()} as {self._where()}", None)

    async def close(self) -> None:
        """The end of the deployment: an upload no host waited for is let go."""
        if self._upload is not None:
            self._upload.cancel()
            await asyncio.gather(self._upload, return_exceptions=True)

    async def download(
        self, remote: RemoteHost, probe: Probe, deployment_id: str
    ) -> tuple[CommandResult, tuple[str, ...]]:
        """DownloadBundle on one host: its result, and notes for the event."""
        revision = self.revision
        existing = probe.bundle(revision.sha256)
        store = self.store
        last = probe.last_successful
        if store is None or existing is not None:
            return await self._push(remote, deployment_id, existing, last), ()
        if self._upload is None:  # no probe said so before (cannot happen): upload now
            self._upload = asyncio.create_task(self._uploaded(store))
        try:
            await asyncio.shield(self._upload)
            url = store.presign(revision.sha256)
        except BundleStoreError as exc:
            return await self._cannot_fetch(remote, deployment_id, last, str(exc))
        if probe.fetch is None:
            why = f"the host has neither curl nor wget to fetch the bundle from {self._where()}"
            return await self._cannot_fetch(remote, deployment_id, last, why)
        result = await remote.fetch(deployment_id, revision.sha256, url, probe.fetch, last)
        result = CommandResult(
            result.exit_status,
            _hidden(result.stdout, url),
            _hidden(result.stderr, url),
            result.frames,
        )
        if result.exit_status == FETCH_FAILED:
            why = result.stderr.strip()[-1000:] or f"exit status {result.exit_status}"
            return await self._cannot_fetch(remote, deployment_id, last, why, result.stdout)
        return result, ()

    async def _push(
        self, remote: RemoteHost, deployment_id: str, existing: str | None, last: str | None
    ) -> CommandResult:
        revision = self.revision
        return await remote.download(
            deployment_id,
            revision.sha256,
            existing,
            revision.tar_path,
            remote.spec.max_revisions,
            last,
        )

    async def _cannot_fetch(
        self,
        remote: RemoteHost,
        deployment_id: str,
        last: str | None,
        why: str,
        output: str = "",
    ) -> tuple[CommandResult, tuple[str, ...]]:
        """A host that could not fetch the bundle: pushed to when the store allows it."""
        assert self.store is not None
        if not self.store.fallback_push:
            return CommandResult(3, output, f"{why}\n"), ()
        note = f"{why}; the bundle was pushed over SSH instead (bundle_store fallback: push)"
        self.notify(note, remote.spec.name)
        pushed = await self._push(remote, deployment_id, None, last)
        return pushed, (note,)
