"""Every item of a store's list, read a page at a time (#13 item 5).

The store's lists are bounded (``limit`` 1..10,000) and carry a cursor, so nothing is
cut off without the caller knowing; a caller that does need all of them (the MLflow
API's in-memory filters, ``modelreg models``, ``lineage impact --all``, the CLI's lists)
walks the pages here instead of trusting a large limit. Light on imports: the CLI and
the server use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from registry.models import MAX_PAGE

if TYPE_CHECKING:
    from registry.models import Event, LineageHit, RegisteredModel
    from registry.store.base import RegistryStore

T = TypeVar("T")
C = TypeVar("C")


def walk(
    read: Callable[[int, C], list[T]],
    cursor: Callable[[T], C],
    first: C,
    *,
    page: int = MAX_PAGE,
) -> Iterator[list[T]]:
    """The pages of one list: ``read(limit, after)`` from ``first``, each next page after
    the ``cursor`` of the last item, until a page comes back short. For example every
    token: ``walk(lambda n, a: store.list_tokens(limit=n, after=a), lambda t: t.name, None)``.
    """
    after = first
    while True:
        found = read(page, after)
        if found:
            yield found
        if len(found) < page:
            return
        after = cursor(found[-1])


def every(
    read: Callable[[int, C], list[T]], cursor: Callable[[T], C], first: C, *, page: int = MAX_PAGE
) -> Iterator[T]:
    """The items of ``walk``'s pages, one at a time."""
    for found in walk(read, cursor, first, page=page):
        yield from found


def model_pages(store: RegistryStore, *, page: int = MAX_PAGE) -> Iterator[list[RegisteredModel]]:
    """Every model by name, ``page`` at a time (each page after the last one's name)."""
    return walk(lambda n, after: store.list_models(limit=n, after=after), _name, None, page=page)


def _name(item: RegisteredModel) -> str | None:
    return item.name


def all_models(store: RegistryStore) -> list[RegisteredModel]:
    """Every model by name: for callers that hold them all anyway (one row per model)."""
    return [m for found in model_pages(store) for m in found]


def impact_pages(
    store: RegistryStore,
    *,
    dataset: str | None = None,
    pipeline: str | None = None,
    commit: str | None = None,
    page: int = MAX_PAGE,
) -> Iterator[list[LineageHit]]:
    """Every lineage hit, live ones first, ``page`` at a time (by offset)."""
    offset = 0
    while True:
        found = store.lineage_impact(
            dataset=dataset, pipeline=pipeline, commit=commit, limit=page, offset=offset
        )
        if found:
            yield found
        if len(found) < page:
            return
        offset += len(found)


def model_events(
    store: RegistryStore,
    model: str,
    *,
    kinds: Sequence[str] | None = None,
    page: int = MAX_PAGE,
) -> Iterator[Event]:
    """Every event of ``model`` (of ``kinds`` if given), oldest first, read ``page`` at a
    time: for a log of any length, where ``history`` would hold all of it at once."""
    since = 0
    while True:
        found = store.events(since=since, limit=page, model=model, kinds=kinds)
        yield from found
        if len(found) < page:
            return
        since = found[-1].seq
