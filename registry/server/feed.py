"""The event feed's fan-out in one server process: one follower of the log, many subscribers.

A follower thread tails the event log: it polls ``latest_seq()`` every
``feed_poll_s`` (on PostgreSQL it is also woken by the NOTIFY each event's
transaction sends) and reads what is new once, with ``events(since=…)``, into a
bounded ring in memory. It hands each batch to the event loop, which appends it and
wakes every waiting subscriber (long-polls and event streams) at once: two hundred
subscribers cost one database read per change, not two hundred. The ring keeps the
newest ``MEMORY`` events; a subscriber further behind (``Feed.after`` answers None)
reads from the database until it is back inside the ring.

The ring and what subscribers read belong to the event loop's thread; the follower
only reads the database and schedules ``_publish`` on the loop, so neither takes a
lock. Each event is serialised once, by the follower, for every subscriber.

The follower also keeps this process's read cache (``registry.server.reads``) honest:
each event it publishes forgets its model there, a change in the number of revoked
tokens (polled with the sequence number, in one read) forgets every remembered token,
and ``current()`` says whether it has read the log recently enough for the cache to
answer at all.

On SIGTERM or SIGINT the feed tells its subscribers first (then uvicorn's own
handler runs): event streams end cleanly instead of holding the server's graceful
shutdown open until it cancels them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from registry.config import ServerConfig
from registry.errors import RegistryError
from registry.models import Event
from registry.server.reads import ReadCache
from registry.store.base import RegistryStore

log = logging.getLogger("registry.server.feed")

MEMORY = 10_000  # events the ring keeps (it trims to this once it holds twice as many)
PAGE = 1000  # events read from the database per query
MAX_BACKOFF_S = 5.0
STALE_S = 1.0  # a follower that has not read the log for this long is not current


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as subscribers receive it, serialised once."""

    seq: int
    model: str
    kind: str
    json: str

    @classmethod
    def of(cls, event: Event) -> Entry:
        return cls(event.seq, event.model, event.kind, event.model_dump_json())

    @property
    def frame(self) -> str:
        """The event as one server-sent event."""
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {self.json}\n\n"


class Feed:
    """The recent event log of one server process, and the subscribers waiting on it.

    Every method but ``start`` and ``stop`` runs on the event loop's thread.
    """

    def __init__(
        self,
        store: RegistryStore,
        loop: asyncio.AbstractEventLoop,
        *,
        poll_s: float,
        listen_url: str | None = None,
        memory: int = MEMORY,
        cache: ReadCache | None = None,
        stale_s: float = STALE_S,
    ) -> None:
        self.cache = cache
        self.stale_s = max(stale_s, 4 * poll_s)
        self.polled_at = float("-inf")  # monotonic time of the last good poll
        self.latest = 0  # the newest sequence number in the ring (or primed at)
        self.floor: int | None = None  # the ring holds every event after this; None: not yet
        self.closing = False
        self._ring: list[Entry] = []
        self._memory = memory
        self._changed = asyncio.Event()
        self._loop = loop
        self._store = store
        self._poll_s = poll_s
        self._listen_url = listen_url
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._listener: Any = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ subscribers (loop)

    def after(
        self,
        since: int,
        *,
        model: str | None = None,
        limit: int = PAGE,
        visible: Callable[[str], bool] | None = None,
    ) -> tuple[list[Entry], int] | None:
        """Events after ``since`` (of ``model`` only, if given, and of models ``visible``
        accepts: the subscriber's token's), at most ``limit``, and the sequence number up
        to which the log was looked through; None if ``since`` is older than the ring
        (read the database instead)."""
        if self.floor is None or since < self.floor:
            return None
        start = bisect.bisect_right(self._ring, since, key=_seq_of)
        if model is None and visible is None:
            found = self._ring[start : start + limit]
        else:
            found = []
            for entry in self._ring[start:]:
                if (model is None or entry.model == model) and (
                    visible is None or visible(entry.model)
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
        through = found[-1].seq if len(found) == limit else max(since, self.latest)
        return found, through

    async def wait(self, since: int, timeout: float) -> bool:
        """Wait until the ring has an event after ``since`` (True), or ``timeout``
        seconds pass or the server shuts down (False)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.latest <= since and not self.closing:
                    await self._changed.wait()
        return self.latest > since

    def close_subscribers(self) -> None:
        """The server is shutting down: every wait returns, and streams end."""
        self.closing = True
        self._wake()

    def _prime(self, seq: int) -> None:
        if self.floor is None:
            self.floor = self.latest = seq
            self._wake()

    def current(self) -> bool:
        """Whether the follower has read the log within ``stale_s``: while it has, this
        process may answer reads from memory (``registry.server.reads``)."""
        return self.floor is not None and time.monotonic() - self.polled_at < self.stale_s

    def _publish(self, entries: list[Entry], newest: int) -> None:
        # ``latest`` moves before the cache forgets: a read on a worker thread that takes
        # the cache's clock after this forget then also sees the new ``latest``, so it never
        # fills the cache from a read replica that has not replayed these events.
        self.latest = max(self.latest, newest)
        if self.cache is not None:
            self.cache.forget_models({entry.model for entry in entries})
        self._ring.extend(entries)
        if len(self._ring) > 2 * self._memory:  # trimmed in halves: amortised O(1)
            cut = len(self._ring) - self._memory
            self.floor = self._ring[cut - 1].seq
            del self._ring[:cut]
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ------------------------------------------------------------ the follower (threads)

    def start(self) -> Feed:
        targets = [self._follow]
        if self._listen_url is not None:
            targets.append(self._listen)
        for target in targets:
            thread = threading.Thread(target=target, name="modelreg-feed", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        listener = self._listener
        if listener is not None:
            listener.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.close_subscribers()

    def _follow(self) -> None:
        read_to: int | None = None
        revoked: int | None = None
        delay = self._poll_s
        while not self._stop.is_set():
            try:
                newest, revoked_now = self._marks()
                if revoked is not None and revoked_now != revoked and self.cache is not None:
                    self.cache.forget_tokens()
                revoked = revoked_now
                if read_to is None:
                    read_to = newest
                    self._loop.call_soon_threadsafe(self._prime, newest)
                elif newest > read_to:
                    entries, read_to = self._read(read_to, newest)
                    self._loop.call_soon_threadsafe(self._publish, entries, read_to)
                elif newest < read_to and self.cache is not None:  # the log went back
                    self.cache.forget_everything()
                    read_to = newest
                self.polled_at = time.monotonic()
                delay = self._poll_s
            except (RegistryError, OSError) as exc:
                delay = min(max(delay * 2, 0.2), MAX_BACKOFF_S)
                log.warning("event feed: cannot read the log (retry in %.1fs): %s", delay, exc)
            except RuntimeError:  # the event loop closed under us: the server is gone
                return
            except Exception:  # a bug must not end the feed for every subscriber
                delay = min(max(delay * 2, 0.2), MAX_BACKOFF_S)
                log.exception("event feed: unexpected error (retry in %.1fs)", delay)
            self._kick.wait(delay)
            self._kick.clear()

    def _marks(self) -> tuple[int, int]:
        """The log's newest sequence number, and the revoked-token count (0 for a store
        that cannot count them, whose tokens this process then never remembers)."""
        marks = getattr(self._store, "feed_marks", None)
        if marks is None:
            return self._store.latest_seq(), 0
        newest, revoked = marks()
        return int(newest), int(revoked)

    def _read(self, since: int, newest: int) -> tuple[list[Entry], int]:
        """Every event in ``(since, newest]`` (and any committed since), oldest first."""
        entries: list[Entry] = []
        while since < newest:
            batch = self._store.events(since=since, limit=PAGE)
            if not batch:
                # Sequence numbers are handed out under a lock and commit in order,
                # so this is a log that lost events (restored from a backup): skip on.
                log.warning("event feed: no events in (%d, %d]", since, newest)
                if self.cache is not None:  # what changed is unknown: forget it all
                    self.cache.forget_everything()
                return entries, newest
            for event in batch:
                try:
                    entries.append(Entry.of(event))
                except ValueError:  # cannot be sent as JSON: skip it, not the feed
                    log.exception("event feed: event %d cannot be serialised", event.seq)
            since = batch[-1].seq
        return entries, since

    def _listen(self) -> None:
        """Wake the follower on every NOTIFY; reconnect with backoff when the line drops
        (the poll covers the gap: nothing is missed, only read later)."""
        from registry.store.sql.listen import EventListener

        assert self._listen_url is not None
        delay = 0.2
        while not self._stop.is_set():
            try:
                with EventListener(self._listen_url) as listener:
                    self._listener = listener
                    delay = 0.2
                    self._kick.set()
                    while not self._stop.is_set():  # closed while connecting: stop here
                        for _seq in listener.heard(timeout=1.0):
                            self._kick.set()
            except RegistryError as exc:
                log.warning("event feed: NOTIFY channel unavailable: %s", exc)
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)


def _seq_of(entry: Entry) -> int:
    return entry.seq


def start(app: Any, config: ServerConfig) -> Callable[[], None]:
    """Start this process's feed (``app.state.feed``); the returned callable stops it."""
    loop = asyncio.get_running_loop()
    listen = config.registry_url if config.registry_url.startswith("postgresql") else None
    feed = Feed(
        app.state.store,
        loop,
        poll_s=config.feed_poll_s,
        listen_url=listen,
        cache=getattr(app.state, "reads", None),
    ).start()
    app.state.feed = feed

    def closing() -> None:
        loop.call_soon_threadsafe(feed.close_subscribers)

    restore = _on_shutdown_signal(closing)

    def stop() -> None:
        restore()
        feed.stop()

    return stop


def _on_shutdown_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` first when SIGTERM or SIGINT arrives, then the handler already
    installed (uvicorn's); returns what puts that handler back. Only where a Python
    handler is installed (uvicorn's main thread), so nothing changes elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: dict[int, tuple[Any, Any]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            callback()
            previous(signum, frame)

        signal.signal(sig, handler)
        installed[sig] = (handler, previous)

    def restore() -> None:
        for sig, (handler, previous) in installed.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return restore
