"""REST resources: the rollback as a dry run, for one model or for many.

``/rollback-plan/{name}`` follows the other per-model resources (``/policy/{name}``,
``/versions/{name}``): a model name may hold one ``/``, so a suffix after the name
(``/models/{name}/rollback-plan``) could not be told from a model named
``team/rollback-plan``. Both are reads: a reader's token may ask, within its scopes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from registry.release_models import RollbackPlan
from registry.server.deps import Door, reply
from registry.server.routes.params import INT32_MAX, AfterName, LimitQuery, StoredText, many

router = APIRouter(tags=["release"])

MAX_NAMES = 1000
ToQuery = Annotated[int | None, Query(ge=1, le=INT32_MAX, description="A version that once served")]
NamesQuery = Annotated[
    list[StoredText] | None,
    Query(max_length=MAX_NAMES, description="Only these models (repeat the key)"),
]


@router.get(
    "/rollback-plan/{name:path}",
    response_model=RollbackPlan,
    summary="What a rollback would restore now, why, and whether it would go through",
)
def rollback_plan(name: str, store: Door, to: ToQuery = None) -> Response:
    return reply(store.rollback_plan(name, to=to))


@router.get(
    "/rollback-plans",
    response_model=list[RollbackPlan],
    summary="The rollback plan of every model (or of the named ones), by name",
)
def rollback_plans(
    store: Door, name: NamesQuery = None, limit: LimitQuery = 1000, after: AfterName = None
) -> Response:
    """The named models' plans; without names, at most ``limit`` (1..10,000) models per
    page, the next page ``after`` the last name."""
    return reply(many(store.rollback_plans(name, limit=limit, after=after)))
