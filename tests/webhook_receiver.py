"""A real webhook receiver for the tests: an ``http.server`` on a port of 127.0.0.1,
in a thread, recording every request. It can go down (its port closed) and come
back on the same port, and answer a few requests with an error first."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from registry.models import Event
from registry.webhooks import verify

WAIT_S = 30.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event_id(self) -> int:
        return int(self.headers["x-modelreg-event-id"])

    @property
    def event_type(self) -> str:
        return self.headers["x-modelreg-event-type"]

    @property
    def event(self) -> Event:
        return Event.model_validate_json(self.body)

    def signed_by(self, secret: str) -> bool:
        timestamp = int(self.headers["x-modelreg-timestamp"])
        return verify(secret, timestamp, self.body, self.headers["x-modelreg-signature"])


class Receiver:
    """``up()`` listens on ``port``; ``down()`` closes it. ``fail_next(n, status)``
    answers the next ``n`` requests with ``status``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    status = receiver._failures.pop(0) if receiver._failures else 204
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        # down() waits for the loop's next poll: 0.5 s by default, at every teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (to ``path`` if given), in arrival order."""
        with self._lock:
            return [
                r for r in self.requests if r.answered < 300 and (path is None or r.path == path)
            ]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = WAIT_S
    ) -> list[Received]:
        """Wait until ``count`` requests were delivered (to ``path``); all of them."""
        return wait_until(lambda: self.delivered(path), lambda got: len(got) >= count, timeout)


def wait_until(read: Callable[[], T], done: Callable[[T], bool], timeout: float = WAIT_S) -> T:
    """``read()`` once ``done`` says so; its last value after ``timeout`` otherwise (the
    caller's assertion then says what was missing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
