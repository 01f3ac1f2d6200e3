"""Webhook receivers on 127.0.0.1 for the trigger tests: one that records every request it is
sent, and one that answers as slowly as a server can without ever stopping."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    posts: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    # Every request of any method, a redirect followed as a GET too: (method, path, headers).
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, path: str | None = None) -> list[str]:
        with self.lock:
            return [h["X-Orchestrator-Event"] for p, h, _ in self.posts if path in (None, p)]


@contextmanager
def receiver(
    status: int = 204, headers: dict[str, str] | None = None, echo: str | None = None
) -> Iterator[tuple[str, Received]]:
    """``(base URL, what it received)``; every request is answered ``status`` with ``headers``,
    and the reason phrase is the request's header ``echo`` if given (a receiver that quotes
    what it was sent in its errors)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with received.lock:
                received.requests.append((self.command, self.path, dict(self.headers)))
                if self.command == "POST":
                    received.posts.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(status, self.headers.get(echo) if echo else None)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``received``."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Trickled:
    """When (monotonic) each connection's request arrived at the trickler."""

    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def trickler(interval: float = 0.2, limit: float = 60.0) -> Iterator[tuple[str, Trickled]]:
    """``(base URL, arrivals)`` of a server that reads each request, then answers one byte of a
    header line that never ends every ``interval`` seconds: every read a client makes succeeds
    in time, and the answer never completes. Each connection stops after ``limit`` seconds (so a
    client that waits for it, the code before a fix, ends the test late rather than never)."""
    stopping = threading.Event()
    trickled = Trickled()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(limit)
            try:
                connection.recv(65536)
                with trickled.lock:
                    trickled.arrivals.append(time.monotonic())
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                end = time.monotonic() + limit
                # The pace of the answer is the behaviour under test, not a synchronisation.
                while not stopping.wait(interval) and time.monotonic() < end:
                    connection.sendall(b"a")
            except OSError:
                return  # the client gave up: what the tests want

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", trickled
    finally:
        stopping.set()
        thread.join(timeout=10)
        listener.close()
