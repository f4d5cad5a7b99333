"""The resolver's push channel over HTTP: the registry server's event stream (SSE).

``SseListener`` has the shape of ``registry.store.sql.listen.EventListener``: it
yields the sequence numbers of committed events as the server streams them
(``GET /api/v1/events/stream``), ``close()`` from any thread ends a ``heard()``
running in another within ``check_every`` seconds, and a stream that drops (the
server killed or restarted, the line cut, nothing heard for ``idle_timeout``
seconds though the server sends a heartbeat every 15 s) is ``RegistryUnavailable``.
What it hears is a hint, as with NOTIFY: read ``events(since=…)`` to learn what
changed, and after ``RegistryUnavailable`` open a new listener and read the feed
again (pass ``since=last_seq`` to have the server replay what was missed).

One thread per listener reads the stream (httpx, blocking) and hands sequence numbers
to ``heard()`` through a queue; ``close()`` shuts the socket down so that thread
ends at once instead of at the next heartbeat.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import TYPE_CHECKING

from registry.errors import RegistryError, RegistryUnavailable

if TYPE_CHECKING:
    import httpx

API = "/api/v1"
STREAM = "/events/stream"
IDLE_TIMEOUT_S = 45.0  # three missed heartbeats: the line is dead
_DROPPED = object()


class SseListener:
    """One streaming GET of the registry server's event stream, from now (or after
    ``since``), as the token's name."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        since: int | None = None,
        connect_timeout: float = 10,
        idle_timeout: float = IDLE_TIMEOUT_S,
        check_every: float = 0.2,
    ) -> None:
        import httpx

        self.url = stream_url(url)
        self.check_every = check_every
        self.last_seq = since  # the newest sequence number heard (resume after it)
        self._heard: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._error = ""
        headers = {"Accept": "text/event-stream", "User-Agent": "modelreg"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if since is not None:
            headers["Last-Event-ID"] = str(since)
        timeout = httpx.Timeout(idle_timeout, connect=connect_timeout)
        self._client = httpx.Client(headers=headers, timeout=timeout)
        try:
            self._response = self._client.send(
                self._client.build_request("GET", self.url), stream=True
            )
        except httpx.HTTPError as exc:
            self._client.close()
            raise RegistryUnavailable(f"cannot open the event stream at {self.url}: {exc}") from exc
        if self._response.status_code != 200:
            error = _refused(self._response, self.url)
            self._response.close()
            self._client.close()
            raise error
        self._reader = threading.Thread(target=self._read, name="modelreg-sse", daemon=True)
        self._reader.start()

    def heard(self, timeout: float | None = None) -> Iterator[int]:
        """Sequence numbers of committed events, as they arrive, for ``timeout``
        seconds (``None``: until ``close()``). ``RegistryUnavailable`` if the stream
        drops."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            wait = self.check_every
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            try:
                item = self._heard.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = None
            if item is _DROPPED:
                self._heard.put(_DROPPED)  # broken for good: every later heard() says so
                if self._closed.is_set():
                    return
                raise RegistryUnavailable(self._error)
            if isinstance(item, int):
                yield item
            if deadline is not None and time.monotonic() >= deadline:
                return

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        sock = _socket_of(self._response)
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv()
        self._reader.join(timeout=2)
        with suppress(OSError, RuntimeError, ValueError):
            self._response.close()
        self._client.close()

    def __enter__(self) -> SseListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read(self) -> None:
        import httpx

        try:
            for seq in dispatched(self._response.iter_lines()):
                self.last_seq = seq
                self._heard.put(seq)
            self._error = f"the registry server ended its event stream ({self.url})"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            self._error = f"lost the registry's event stream at {self.url}: {exc or type(exc)}"
        self._heard.put(_DROPPED)


def dispatched(lines: Iterable[str]) -> Iterator[int]:
    """The ids of the events a text/event-stream dispatches, in order (comments and
    events without a numeric id are skipped)."""
    last_id = ""
    data = False
    for line in lines:
        if not line:
            if data and last_id.isascii() and last_id.isdigit():
                yield int(last_id)
            data = False
            continue
        if line.startswith(":"):
            continue
        field, _sep, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id" and "\0" not in value:
            last_id = value
        elif field == "data":
            data = True


def stream_url(url: str) -> str:
    """The event stream of the registry server at ``url`` (with or without the API prefix)."""
    base = url.rstrip("/")
    return (base if base.endswith(API) else base + API) + STREAM


def _refused(response: httpx.Response, url: str) -> RegistryError:
    from registry.store.http import error_of

    response.read()
    return error_of(response, url)


def _socket_of(response: httpx.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    sock = None if stream is None else stream.get_extra_info("socket")
    return sock if isinstance(sock, socket.socket) else None
