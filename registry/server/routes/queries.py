"""REST resources: reading the registry's past and across models.

A model's audit trail, what served in Production at a moment, search with the filter
language of ``registry.search``, and lineage impact (which versions used a dataset,
feature pipeline or commit, and which of them serve now).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from registry.models import Event, LineageHit, ModelVersion
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    INT64_MAX,
    MAX_LIMIT,
    LimitQuery,
    SinceQuery,
    StoredText,
    TextQuery,
    many,
)

OffsetQuery = Annotated[int, Query(ge=0, le=INT64_MAX, description="The cursor: rows skipped")]

router = APIRouter(tags=["queries"])


class ProductionAt(BaseModel):
    version: int | None


@router.get(
    "/history/{name:path}", response_model=list[Event], summary="A model's events, oldest first"
)
def history(name: str, store: Door, since: SinceQuery = 0, limit: LimitQuery = 1000) -> Response:
    """At most ``limit`` (1..10,000) events after ``since``; the next page is ``since`` the
    last one's seq."""
    return reply(many(store.history(name, since=since, limit=limit)))


@router.get(
    "/production-at/{name:path}",
    response_model=ProductionAt,
    summary="The version that served in Production at a moment (ISO 8601, with a timezone)",
)
def production_at(name: str, at: Annotated[datetime, Query()], store: Door) -> Response:
    return reply({"version": store.production_at(name, at)})


@router.get(
    "/search",
    response_model=list[ModelVersion],
    summary="Versions matching a filter, e.g. metrics.auc > 0.85 and stage = 'Production'",
)
def search(
    store: Door,
    filter: Annotated[StoredText, Query(max_length=10_000)] = "",
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    offset: OffsetQuery = 0,
) -> Response:
    """At most ``limit`` (1..10,000; the filter's own, else 100); the next page starts at
    ``offset`` plus the page's length."""
    return reply(many(store.search(filter, limit=limit, offset=offset)))


@router.get(
    "/lineage/impact",
    response_model=list[LineageHit],
    summary="Versions that used a dataset (name, name@v, name@v1..v2), pipeline or commit",
)
def lineage_impact(
    store: Door,
    dataset: TextQuery = None,
    pipeline: TextQuery = None,
    commit: TextQuery = None,
    limit: LimitQuery = 1000,
    offset: OffsetQuery = 0,
) -> Response:
    """Live versions first, then by name and version: at most ``limit`` (1..10,000) from
    ``offset``."""
    found = store.lineage_impact(
        dataset=dataset, pipeline=pipeline, commit=commit, limit=limit, offset=offset
    )
    return reply(many(found))
