"""The resolver's push channel on PostgreSQL: LISTEN for the event log's NOTIFYs.

Every event the store appends sends ``NOTIFY modelreg_events, '<seq>'`` in the
transaction that appends it, so a listener hears a sequence number only once that
event has committed (never for a rolled-back one). What it hears is a hint: read
``events(since=…)`` to learn what changed. Open the listener *before* reading the
feed, so an event that commits in between is either read or heard. Notifications
sent while the connection is down are lost: after ``RegistryUnavailable``, open a
new listener and read the feed again. SQLite has no such channel; followers there
poll ``latest_seq()``.

The channel belongs to the database, not to a schema: registries in two schemas of
one database hear each other's events (a spurious hint costs one feed read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from registry.errors import InvalidInput, RegistryUnavailable
from registry.store.sql.common import EVENTS_CHANNEL

if TYPE_CHECKING:
    import psycopg


class EventListener:
    """One autocommit psycopg 3 connection LISTENing on the event channel.

    ``heard()`` yields sequence numbers as they arrive; ``close()`` may be called
    from any thread and ends a ``heard()`` running in another within ``check_every``
    seconds (its longest wait on the socket between checks).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10, check_every: float = 0.2) -> None:
        import psycopg

        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise InvalidInput(
                f"LISTEN needs a PostgreSQL registry, not {parsed.get_backend_name()!r}; "
                "on SQLite, poll latest_seq()"
            )
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.check_every = check_every
        self._lock = threading.Lock()  # held while the socket is read, never across a yield
        self._closed = threading.Event()
        try:
            self._conn: psycopg.Connection[tuple[object, ...]] = psycopg.connect(
                conninfo, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
            self._conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        except psycopg.Error as exc:
            raise RegistryUnavailable(f"cannot listen for registry events: {_line(exc)}") from exc

    def heard(self, timeout: float | None = None) -> Iterator[int]:
        """Sequence numbers of committed events, as they arrive, for ``timeout``
        seconds (``None``: until ``close()``). ``RegistryUnavailable`` if the
        connection is lost."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            wait = self.check_every
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            yield from self._receive(max(wait, 0.0))
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _receive(self, wait: float) -> list[int]:
        import psycopg

        with self._lock:
            if self._closed.is_set():
                return []
            try:
                # stop_after=1 returns with the first packet (and all it carries).
                notifies = list(self._conn.notifies(timeout=wait, stop_after=1))
            except psycopg.Error as exc:
                raise RegistryUnavailable(f"lost the registry event channel: {_line(exc)}") from exc
        return [seq for n in notifies if (seq := _seq(n.payload)) is not None]

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _seq(payload: str) -> int | None:
    """The payload's sequence number; anything else on the channel is not ours."""
    return int(payload) if payload.isascii() and payload.isdigit() else None


def _line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
