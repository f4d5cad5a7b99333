"""REST resources: app releases, the models they bind, and what they resolve to.

An app name may hold one ``/`` (a namespace) like a model name, so the app is a
``path`` parameter and the release is the segment after it; the routes with a
suffix (``/resolve``, ``/bindings/…``) come before the bare release route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, StringConstraints

from registry.models import AppRelease, Signature
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    AfterName,
    Body,
    LimitQuery,
    StoredText,
    TextQuery,
    VersionNumber,
    many,
)

router = APIRouter(tags=["app releases"])


class AppReleaseCreate(Body):
    app: StoredText
    release: StoredText
    feature_schema: Signature
    description: Annotated[StoredText, StringConstraints(max_length=4096)] | None = None


class BindingChange(Body):
    version: VersionNumber | None = None  # either a pinned version, or
    follow: StoredText | None = None
    reason: Annotated[StoredText, StringConstraints(max_length=4096)] | None = None
    force: bool = False


class ResolvedModel(BaseModel):
    name: str
    version: int


@router.get(
    "/app-releases",
    response_model=list[AppRelease],
    summary="App releases (of one app) with their bindings",
)
def list_app_releases(
    store: Door, app: TextQuery = None, limit: LimitQuery = 1000, after: AfterName = None
) -> Response:
    """At most ``limit`` (1..10,000) per page, by app and then by creation; the next page
    is ``after`` the last one's ``APP@RELEASE``."""
    return reply(many(store.list_app_releases(app, limit=limit, after=after)))


@router.post(
    "/app-releases",
    status_code=201,
    response_model=AppRelease,
    summary="Declare the feature schema an app release sends",
)
def create_app_release(body: AppReleaseCreate, store: Door) -> Response:
    made = store.create_app_release(
        body.app, body.release, body.feature_schema, description=body.description
    )
    return reply(made, 201)


@router.put(
    "/app-releases/{app:path}/{release}/bindings/{model:path}",
    response_model=AppRelease,
    summary="Pin a version of a model to the release, or follow a pointer",
)
def bind_app_release(
    app: str, release: str, model: str, body: BindingChange, store: Door
) -> Response:
    bound = store.bind_app_release(
        app,
        release,
        model,
        version=body.version,
        follow=body.follow,
        reason=body.reason,
        force=body.force,
    )
    return reply(bound)


@router.get(
    "/app-releases/{app:path}/{release}/resolve",
    response_model=ResolvedModel,
    summary="The model and version the release uses now",
)
def resolve_app_release(app: str, release: str, store: Door, model: TextQuery = None) -> Response:
    name, version = store.resolve_app_release(app, release, model)
    return reply({"name": name, "version": version})


@router.get(
    "/app-releases/{app:path}/{release}",
    response_model=AppRelease,
    summary="One app release with its bindings",
)
def get_app_release(app: str, release: str, store: Door) -> Response:
    return reply(store.get_app_release(app, release))
