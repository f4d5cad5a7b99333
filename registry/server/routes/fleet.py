"""REST resources: the serving fleet (resolver heartbeats, and what each resolver serves)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import Field, model_validator

from registry.models import Heartbeat
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    INT32_MAX,
    INT64_MAX,
    AfterName,
    LimitQuery,
    TextQuery,
    many,
    storable,
)

router = APIRouter(tags=["fleet"])


class Beat(Heartbeat):
    """``Heartbeat`` with numbers the database's columns can hold."""

    pid: int = Field(ge=0, le=INT32_MAX)
    version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    generation: int | None = Field(default=None, ge=0, le=INT32_MAX)
    seq: int = Field(ge=0, le=INT64_MAX)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)


@router.post("/heartbeats", status_code=204, summary="Report what one resolver serves now")
def heartbeat(beat: Beat, store: Door) -> Response:
    store.heartbeat(beat)
    return Response(status_code=204)


@router.get(
    "/fleet",
    response_model=list[Heartbeat],
    summary="The last heartbeat of every resolver (of one model)",
)
def fleet(
    store: Door, model: TextQuery = None, limit: LimitQuery = 1000, after: AfterName = None
) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``after`` the last
    resolver id."""
    return reply(many(store.fleet(model, limit=limit, after=after)))
