"""The benchmarks' proxy between the controller and what it talks to: each route listens on an
address of its own and forwards to a host's sshd (or to the S3 server), optionally holding each
chunk ``delay`` seconds in each direction (a fleet far away: bench/handshakes.py) and capping
what the controller sends, all routes together, at ``rate`` bits per second (the controller's
uplink: bench/bundle_store.py). It counts the bytes each way.

The cap is a pacer shared by every connection: a chunk leaves when the uplink, busy with the
chunks before it, is free again, so N connections share the rate as one link would. Only the
controller-to-host direction (client to upstream) is capped: what hosts send back is small, and
a host fetching from the bundle store reaches the store directly, as in a data centre.

Run as a process of its own (``python bench/uplink_proxy.py ROUTES.json [--delay S] [--rate
BITS]``): it prints "ready" once every route listens, then answers each line on its stdin with
the bytes counted so far, as JSON ({"up": ..., "down": ...}); "reset" sets them to zero first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CHUNK = 65536


class Uplink:
    """The shared cap (None: uncapped) and the byte counts."""

    def __init__(self, rate_bits: float | None) -> None:
        self.rate = rate_bits / 8 if rate_bits else None  # bytes per second
        self.free_at = 0.0
        self.up = 0
        self.down = 0

    async def send(self, size: int) -> None:
        """Wait until ``size`` bytes may leave on the capped uplink."""
        self.up += size
        if self.rate is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        await asyncio.sleep(self.free_at - now)


async def _copy(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    uplink: Uplink,
    upward: bool,
) -> None:
    """Copy ``reader`` to ``writer``: each chunk ``delay`` seconds after it arrived and, going
    up, once the uplink lets it."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        try:
            while data := await reader.read(CHUNK):
                chunks.put_nowait((loop.time() + delay, data))
        except OSError:  # the connection reset: what came before still goes
            pass
        chunks.put_nowait((loop.time() + delay, b""))

    receiving = asyncio.create_task(receive())
    try:
        while True:
            due, data = await chunks.get()
            if delay:
                await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                break
            if upward:
                await uplink.send(len(data))
            else:
                uplink.down += len(data)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        receiving.cancel()
        writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(routes: list[list[Any]], delay: float, rate_bits: float | None) -> None:
    """Listen on every route (``[listen address, port, upstream address, port]``)."""
    uplink = Uplink(rate_bits)

    def handler(address: str, port: int) -> Handler:
        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                host_r, host_w = await asyncio.open_connection(address, port)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(
                _copy(client_r, host_w, delay, uplink, True),
                _copy(host_r, client_w, delay, uplink, False),
            )

        return handle

    for listen, listen_port, address, port in routes:
        await asyncio.start_server(handler(address, port), listen, listen_port, backlog=1024)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        if line.strip() == b"reset":
            uplink.up = uplink.down = 0
        print(json.dumps({"up": uplink.up, "down": uplink.down}), flush=True)


class ProxyProcess:
    """The proxy as a child process of the benchmark."""

    def __init__(self, routes: list[list[Any]], workdir: Path, delay: float, rate: float | None):
        path = workdir / "routes.json"
        path.write_text(json.dumps(routes))
        args = [sys.executable, __file__, str(path), "--delay", str(delay)]
        if rate:
            args += ["--rate", str(rate)]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if self._line() != "ready":
            self.process.kill()
            raise RuntimeError("the proxy did not start")

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def counts(self, reset: bool = False) -> dict[str, int]:
        """Bytes through the proxy each way since the last reset."""
        assert self.process.stdin is not None
        self.process.stdin.write("reset\n" if reset else "count\n")
        self.process.stdin.flush()
        return dict(json.loads(self._line()))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("routes", type=Path)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each way")
    parser.add_argument("--rate", type=float, default=None, help="uplink cap, bits per second")
    args = parser.parse_args()
    asyncio.run(serve(json.loads(args.routes.read_text()), args.delay, args.rate))


if __name__ == "__main__":
    main()
