"""REST resources: retention (admin only): what the versions reference, and what gc removed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import Field

from registry.retention_models import ArtifactReferences, CollectedArtifact, CollectionRecord
from registry.server.deps import Door, reply
from registry.server.routes.params import Body, StoredText
from registry.store.sql.retention import MAX_ITEMS

router = APIRouter(tags=["retention"])


class Collection(Body):
    items: list[CollectedArtifact] = Field(max_length=MAX_ITEMS)
    reason: StoredText


@router.get(
    "/retention/references",
    response_model=ArtifactReferences,
    summary="Every artifact digest the versions reference, and which are protected",
)
def artifact_references(store: Door) -> Response:
    return reply(store.artifact_references())


@router.post(
    "/retention/collections",
    response_model=CollectionRecord,
    summary="Log artifact bytes gc removed (one artifact.collected event each)",
)
def record_collection(body: Collection, store: Door) -> Response:
    return reply(store.record_collection(body.items, reason=body.reason))
