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
from registry.server.routes.params import MAX_LIMIT, StoredText, TextQuery, many

router = APIRouter(tags=["queries"])


class ProductionAt(BaseModel):
    version: int | None


@router.get(
    "/history/{name:path}", response_model=list[Event], summary="A model's events, oldest first"
)
def history(name: str, store: Door) -> Response:
    return reply(many(store.history(name)))


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
) -> Response:
    return reply(many(store.search(filter, limit=limit)))


@router.get(
    "/lineage/impact",
    response_model=list[LineageHit],
    summary="Versions that used a dataset (name, name@v, name@v1..v2), pipeline or commit",
)
def lineage_impact(
    store: Door, dataset: TextQuery = None, pipeline: TextQuery = None, commit: TextQuery = None
) -> Response:
    return reply(many(store.lineage_impact(dataset=dataset, pipeline=pipeline, commit=commit)))
