"""Helpers for the replication tests: a real flaky TCP hop, and raw access to region bytes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from registry.artifacts import ArtifactStore, LocalArtifactStore, content_key
from registry.artifacts.s3 import S3ArtifactStore

REGIONS = ("ap-south", "eu-west", "us-east")


class DroppingProxy:
    """A TCP proxy to ``upstream`` that closes the first ``drop`` connections at once.

    A real network fault on 127.0.0.1 (the client sees a dropped connection), so a
    store behind it is unreachable for a counted number of connection attempts and
    then works: retries are observable without patching anything.
    """

    def __init__(self, upstream: tuple[str, int], drop: int) -> None:
        self.upstream = upstream
        self.remaining = drop
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                drop = self.remaining > 0
                if drop:
                    self.remaining -= 1
                    self.dropped += 1
            if drop:
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as upstream:
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()

    def start(self) -> DroppingProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing = True
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self._listener.close()
        self._thread.join(timeout=5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextmanager
def dropping_proxy(endpoint: str, drop: int) -> Iterator[DroppingProxy]:
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    proxy = DroppingProxy((host, int(port)), drop).start()
    try:
        yield proxy
    finally:
        proxy.close()


def remove_stored(store: ArtifactStore, sha256: str) -> None:
    """Delete a region's copy behind the registry's back."""
    if isinstance(store, LocalArtifactStore):
        (store.root / content_key(sha256)).unlink()
    else:
        assert isinstance(store, S3ArtifactStore)
        store.client.delete_object(Bucket=store.bucket, Key=f"{store.prefix}/{content_key(sha256)}")
