"""Helpers for the resolver tests: bounded waits, a TCP hop that can cut the registry
off, and a count of the statements a thread sends to the registry."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Engine, event

T = TypeVar("T")
DEADLINE_S = 8.0


def wait_for(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = DEADLINE_S
) -> T:
    """Poll ``probe`` until ``done`` holds for its value; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout:g}s; last seen: {value!r}")
        time.sleep(0.02)


class RegistryHop:
    """A TCP proxy in front of the registry's PostgreSQL server on 127.0.0.1.

    ``cut()`` closes the listener and every connection through it (the registry is
    gone: connections drop, new ones are refused); ``restore()`` listens again on the
    same port. A real network fault, seen by the driver as such.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def restore(self) -> RegistryHop:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class StatementCount:
    """Statements one thread sends through ``engine``: SQLAlchemy's cursor executions,
    pool checkouts (nothing reaches the database without one) and, on SQLite, every
    statement the driver runs, including the store's raw fast path past SQLAlchemy."""

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.cursor = 0
        self.checkouts = 0
        self.driver = 0

    @property
    def total(self) -> int:
        return self.cursor + self.checkouts + self.driver

    def _on_cursor(self, *_args: Any) -> None:
        if threading.get_ident() == self.thread:
            self.cursor += 1

    def _on_checkout(self, dbapi_conn: Any, *_args: Any) -> None:
        if threading.get_ident() == self.thread:
            self.checkouts += 1
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.set_trace_callback(self._on_driver)

    def _on_driver(self, _sql: str) -> None:
        if threading.get_ident() == self.thread:
            self.driver += 1


@contextmanager
def counting_statements(engine: Engine) -> Iterator[StatementCount]:
    """Count what the calling thread sends to the registry while the block runs."""
    count = StatementCount(threading.get_ident())
    event.listen(engine, "before_cursor_execute", count._on_cursor)
    event.listen(engine.pool, "checkout", count._on_checkout)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", count._on_cursor)
        event.remove(engine.pool, "checkout", count._on_checkout)
