"""Every model, every lineage hit or every event of a model, read a page at a time
(#13 item 5).

The store's lists are bounded (``limit`` 1..10,000) and carry a cursor, so nothing is
cut off without the caller knowing; a caller that does need all of them (the MLflow
API's in-memory filters, ``modelreg models``, ``lineage impact --all``) walks the pages
here instead of trusting a large limit. Light on imports: the CLI and the server use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from registry.models import MAX_PAGE

if TYPE_CHECKING:
    from registry.models import Event, LineageHit, RegisteredModel
    from registry.store.base import RegistryStore


def model_pages(store: RegistryStore, *, page: int = MAX_PAGE) -> Iterator[list[RegisteredModel]]:
    """Every model by name, ``page`` at a time (each page after the last one's name)."""
    after: str | None = None
    while True:
        found = store.list_models(limit=page, after=after)
        if found:
            yield found
        if len(found) < page:
            return
        after = found[-1].name


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
