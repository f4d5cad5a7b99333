"""REST resources: registered models and their versions.

Version routes (``NAME@N``) come before the bare-name route of the same prefix: a
model name may hold one ``/``, so ``{name:path}`` would otherwise swallow ``@N``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field, StringConstraints

from registry.models import ArtifactRef, ModelVersion, RegisteredModel, Stage, VersionCreate
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    INT64_MAX,
    Body,
    LimitQuery,
    StoredText,
    VersionPath,
    many,
)

router = APIRouter(tags=["models"])


class ModelCreate(Body):
    name: StoredText
    description: Annotated[StoredText, StringConstraints(max_length=4096)] | None = None
    tags: dict[StoredText, Annotated[StoredText, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict
    )


class Artifact(ArtifactRef):
    """``ArtifactRef`` with a size the database's 64-bit column can hold."""

    size: int = Field(ge=0, le=INT64_MAX)


class Registration(Body):
    artifact: Artifact
    meta: VersionCreate = Field(default_factory=VersionCreate)


class ModelUpdate(Body):
    tags: dict[StoredText, StoredText | None] | None = None
    description: Annotated[StoredText, StringConstraints(max_length=4096)] | None = None


class ModelRename(Body):
    new_name: StoredText


class VersionUpdate(Body):
    tags: dict[StoredText, StoredText | None] | None = None
    description: Annotated[StoredText, StringConstraints(max_length=4096)] | None = None


@router.get("/models", response_model=list[RegisteredModel], summary="Registered models by name")
def list_models(
    store: Door,
    limit: LimitQuery = 1000,
    after: Annotated[
        StoredText | None, Query(description="The cursor: models named after this one")
    ] = None,
) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``after`` the last name."""
    return reply(many(store.list_models(limit=limit, after=after)))


@router.post("/models", status_code=201, response_model=RegisteredModel, summary="Create a model")
def create_model(body: ModelCreate, store: Door) -> Response:
    made = store.create_model(body.name, description=body.description, tags=body.tags)
    return reply(made, 201)


@router.get("/models/{name:path}", response_model=RegisteredModel, summary="One model")
def get_model(name: str, store: Door) -> Response:
    return reply(store.get_model(name))


@router.patch(
    "/models/{name:path}",
    response_model=RegisteredModel,
    summary="Change a model's tags (null deletes one) or description",
)
def update_model(name: str, body: ModelUpdate, store: Door) -> Response:
    return reply(store.update_model(name, tags=body.tags, description=body.description))


@router.delete(
    "/models/{name:path}",
    status_code=204,
    summary="Delete a model none of whose versions ever served (its history stays)",
)
def delete_model(name: str, store: Door) -> Response:
    store.delete_model(name)
    return Response(status_code=204)


@router.post(
    "/rename/{name:path}",
    response_model=RegisteredModel,
    summary="Rename a model (refused while a version serves)",
)
def rename_model(name: str, body: ModelRename, store: Door) -> Response:
    return reply(store.rename_model(name, body.new_name))


@router.get("/versions/{name:path}@{version}", response_model=ModelVersion, summary="One version")
def get_version(name: str, version: VersionPath, store: Door) -> Response:
    return reply(store.get_version(name, version))


@router.patch(
    "/versions/{name:path}@{version}",
    response_model=ModelVersion,
    summary="Change a version's tags (null deletes one) or description",
)
def update_version(name: str, version: VersionPath, body: VersionUpdate, store: Door) -> Response:
    changed = store.update_version(name, version, tags=body.tags, description=body.description)
    return reply(changed)


@router.delete(
    "/versions/{name:path}@{version}",
    status_code=204,
    summary="Delete a version that never served (recorded in history)",
)
def delete_version(name: str, version: VersionPath, store: Door) -> Response:
    store.delete_version(name, version)
    return Response(status_code=204)


@router.get(
    "/versions/{name:path}",
    response_model=list[ModelVersion],
    summary="A model's versions, newest first",
)
def list_versions(
    name: str,
    store: Door,
    limit: LimitQuery = 1000,
    stage: Annotated[StoredText | None, Query(description="Only versions in this stage")] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=INT64_MAX, description="The cursor: versions below this number"),
    ] = None,
) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``before`` the last one's."""
    found = store.list_versions(
        name, limit=limit, stage=None if stage is None else Stage.parse(stage), before=before
    )
    return reply(many(found))


@router.post(
    "/versions/{name:path}",
    status_code=201,
    response_model=ModelVersion,
    summary="Register a version (replaying meta.idempotency_key returns the same one)",
)
def register(name: str, body: Registration, store: Door) -> Response:
    return reply(store.register(name, body.artifact, body.meta), 201)
