"""REST resources: subject manifests of dataset versions, subject lineage, erasures.

The keys are HMACs of subject ids (``registry.subjects``), never the ids. A manifest's
keys travel as a JSON list of hex strings, ~67 bytes each: the manifest route alone
may carry a body up to ``limits.MANIFEST_MAX_BYTES``. Roles are ``GuardedStore``'s:
recording a manifest needs data-scientist, requesting or justifying an erasure admin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import Field

from registry.models import ArtifactRef, ErasureRequest, SubjectLineage, SubjectManifest
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    INT32_MAX,
    AfterId,
    Body,
    LimitQuery,
    StoredText,
    TextQuery,
    VersionNumber,
    many,
)

router = APIRouter(tags=["subjects"])

ManifestPath = "/datasets/{dataset:path}/versions/{version}/manifest"
RequestPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="An erasure request id")]


class ManifestRecord(Body):
    manifest: ArtifactRef = Field(description="The manifest artifact (content-addressed)")
    subjects: list[StoredText] = Field(
        description="Every subject key the dataset version holds (64 lowercase hex digits)"
    )


# Reasons may be missing here: the store refuses a blank one in its own words.
class ErasureCreate(Body):
    subject: StoredText = Field(description="The subject key (64 lowercase hex digits)")
    reason: StoredText | None = Field(
        default=None, description="Why (kept with the request, never in events)"
    )


class Justification(Body):
    name: StoredText
    version: VersionNumber
    reason: StoredText | None = None


@router.post(
    ManifestPath,
    response_model=SubjectManifest,
    summary="Record the subject keys a dataset version holds (again: the stored record)",
)
def record_manifest(dataset: str, version: str, body: ManifestRecord, store: Door) -> Response:
    return reply(store.record_subject_manifest(dataset, version, body.manifest, body.subjects))


@router.get(ManifestPath, response_model=SubjectManifest, summary="A dataset version's manifest")
def subject_manifest(dataset: str, version: str, store: Door) -> Response:
    return reply(store.subject_manifest(dataset, version))


@router.get(
    "/subjects/{subject}/lineage",
    response_model=SubjectLineage,
    summary="Dataset versions holding a subject, the versions trained on them, which serve",
)
def subject_lineage(subject: str, store: Door) -> Response:
    return reply(store.subject_lineage(subject))


@router.post(
    "/erasures",
    status_code=201,
    response_model=ErasureRequest,
    summary="Record an erasure obligation: every live version on the subject's data is flagged",
)
def request_erasure(body: ErasureCreate, store: Door) -> Response:
    return reply(store.request_erasure(body.subject, reason=body.reason or ""), 201)


@router.get(
    "/erasures",
    response_model=list[ErasureRequest],
    summary="Erasure requests, oldest first (open ones; the items of one model)",
)
def erasures(
    store: Door,
    open_only: Annotated[bool, Query()] = False,
    model: TextQuery = None,
    limit: LimitQuery = 1000,
    after: AfterId = 0,
) -> Response:
    """At most ``limit`` (1..10,000) per page, filtered first; the next page is ``after``
    the last id."""
    found = store.erasures(open_only=open_only, model=model, limit=limit, after=after)
    return reply(many(found))


@router.post(
    "/erasures/{request_id}/justify",
    response_model=ErasureRequest,
    summary="Close one version's item with a recorded justification",
)
def justify_erasure(request_id: RequestPath, body: Justification, store: Door) -> Response:
    return reply(
        store.justify_erasure(request_id, body.name, body.version, reason=body.reason or "")
    )
