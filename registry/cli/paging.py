"""Long lists read a page at a time, so a command writes as it reads (#13).

The store caps every list (``limit`` 1..10,000) and pages by plain numbers: an event's
``seq`` (``since`` going forward, ``before`` going back) and a version number
(``before``). The CLI's cursors are those numbers, so a page asked for again reads the
same rows however many events arrive in between: new ones only ever get higher numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from registry.models import Event, ModelVersion, Stage
    from registry.store.base import RegistryStore

PAGE = 2000  # rows per store call when streaming: a few MB of objects at most


def event_pages(
    store: RegistryStore,
    *,
    since: int = 0,
    before: int | None = None,
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[list[Event]]:
    """Events with ``since < seq < before``, oldest first, ``PAGE`` at a time; at most
    ``limit`` of them (None: every one)."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = PAGE if remaining is None else min(PAGE, remaining)
        page = store.events(since=since, before=before, model=model, kinds=kinds, limit=size)
        if page:
            yield page
        if len(page) < size:
            return
        since = page[-1].seq
        if remaining is not None:
            remaining -= len(page)


class NewestEvents:
    """The ``limit`` newest events of a window (``since < seq < before``), oldest first,
    and the cursor of the page before them: the first event's seq when older ones exist."""

    def __init__(
        self,
        store: RegistryStore,
        *,
        limit: int,
        since: int = 0,
        before: int | None = None,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> None:
        self._store, self._since, self._model, self._kinds = store, since, model, kinds
        self.events = store.events(
            since=since, before=before, model=model, kinds=kinds, limit=limit, newest=True
        )
        self._full = len(self.events) == limit

    def next_cursor(self) -> str | None:
        """The seq to pass as ``--cursor`` for the older page; None when there is none.
        One indexed read of at most one row, and only when the page came back full."""
        if not self._full:
            return None
        first = self.events[0].seq
        older = self._store.events(
            since=self._since,
            before=first,
            model=self._model,
            kinds=self._kinds,
            limit=1,
            newest=True,
        )
        return str(first) if older else None


def seq_before(store: RegistryStore, model: str, moment: datetime) -> int:
    """The seq of ``model``'s last event before ``moment`` (0 if none): ``--since TIME``
    as a cursor. A binary search over sequence numbers, one single-row read a step
    (17 steps for 100,000 events), as a model's events are stamped in seq order."""
    low, high = 0, store.latest_seq()
    while low < high:  # the answer is in [low, high]
        middle = (low + high) // 2
        after = store.events(since=middle, model=model, limit=1)
        if after and _aware(after[0].at) < moment:
            low = after[0].seq  # an event before the moment lies beyond middle
        else:
            high = middle
    return low


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class VersionPages:
    """Versions of one model, newest first, ``PAGE`` at a time, at most ``limit`` of
    them; afterwards ``next_cursor`` says where the next (older) page starts."""

    def __init__(
        self,
        store: RegistryStore,
        name: str,
        *,
        limit: int,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> None:
        self._store, self._name, self._stage = store, name, stage
        self._limit, self._before = limit, before
        self._last: int | None = None
        self._shown = 0

    def __iter__(self) -> Iterator[list[ModelVersion]]:
        before = self._before
        while self._shown < self._limit:
            size = min(PAGE, self._limit - self._shown)
            page = self._store.list_versions(
                self._name, limit=size, stage=self._stage, before=before
            )
            if page:
                yield page
                self._last = before = page[-1].version
                self._shown += len(page)
            if len(page) < size:
                return

    def next_cursor(self) -> str | None:
        """The version number to pass as ``--cursor`` for the older page, or None."""
        if self._last is None or self._shown < self._limit:
            return None
        older = self._store.list_versions(self._name, limit=1, stage=self._stage, before=self._last)
        return str(self._last) if older else None
