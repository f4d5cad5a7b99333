"""MLflow's Model Registry REST API (``/api/2.0/mlflow/…``), on modelreg's store, auth and gates.

An unmodified MLflow client (``mlflow.set_registry_uri("http://modelreg:8080")``, its
token in ``MLFLOW_TRACKING_TOKEN``) registers, tags, stages, aliases and loads models
here. Every call goes through the same door as the REST API (``deps.Door``: the
verified token, its role and scopes, ``GuardedStore``), so MLflow's words get
modelreg's rules: a ``transition-stage`` to Production or an alias on a protected
alias passes the release gates (a refusal is a 400 carrying the reasons, and a
``refused`` event in history), and every change is in ``modelreg history`` with the
token's name as its actor.

Errors are MLflow's shape, ``{"error_code", "message"}``, always 4xx for what the
caller can fix: the client retries 5xx for minutes, so only a registry that is really
unavailable answers 503.

Sources: ``model-versions/create`` reads a ``file://``, local or ``s3://`` source under
one of the server's ``--source-root``s into a content-addressed bundle in the
server's artifact store (``registry.artifacts.bundle``), so replication and
verification work for it as for native artifacts. Anything else is recorded verbatim
as an external reference (``format: external``), which the release policy keeps out
of Production unless it sets ``allow_unverified``. ``get-download-uri`` answers a URI
under ``/api/2.0/mlflow-artifacts/artifacts/`` that the client downloads from this
server, or an external reference unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    ChecksumMismatch,
    Conflict,
    Forbidden,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    ReleaseCheckFailed,
    Unauthenticated,
)
from registry.mlflow_api import search, wire
from registry.models import (
    EXTERNAL_FORMAT,
    MAX_PAGE,
    ArtifactRef,
    ModelVersion,
    Stage,
    VersionCreate,
    check_model_name,
)
from registry.server.deps import Door
from registry.server.routes.params import INT32_MAX, storable
from registry.server.routes.pointers import one_at_a_time
from registry.store.pages import all_models

log = logging.getLogger("registry.server.mlflow")

PREFIX = "/api/2.0"
API = "/mlflow"
ARTIFACTS = "/mlflow-artifacts/artifacts"
MODELS_ROOT = "models"  # download URIs: …/mlflow-artifacts/artifacts/models/NAME@V/…
REASON = "via the MLflow API"


class _Body(BaseModel):
    """An MLflow request body: fields this server does not use are ignored (newer
    clients send more), unstorable JSON is refused."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)


class _Tag(_Body):
    key: str
    value: str = ""


class ModelCreate(_Body):
    name: str
    tags: list[_Tag] = Field(default_factory=list, max_length=1000)
    description: str | None = Field(default=None, max_length=4096)


class ModelName(_Body):
    name: str


class ModelRename(_Body):
    name: str
    new_name: str


class ModelUpdate(_Body):
    name: str
    description: str | None = Field(default=None, max_length=4096)


class ModelTag(_Body):
    name: str
    key: str
    value: str = ""


class ModelTagKey(_Body):
    name: str
    key: str


class AliasSet(_Body):
    name: str
    alias: str
    version: str | int


class AliasName(_Body):
    name: str
    alias: str


class LatestVersions(_Body):
    name: str
    stages: list[str] = Field(default_factory=list, max_length=10)


class VersionCreateBody(_Body):
    name: str
    source: str = Field(max_length=4096)
    run_id: str | None = Field(default=None, max_length=256)
    tags: list[_Tag] = Field(default_factory=list, max_length=1000)
    run_link: str | None = Field(default=None, max_length=4096)
    description: str | None = Field(default=None, max_length=4096)


class VersionRef(_Body):
    name: str
    version: str | int


class VersionUpdateBody(_Body):
    name: str
    version: str | int
    description: str | None = Field(default=None, max_length=4096)


class VersionTag(_Body):
    name: str
    version: str | int
    key: str
    value: str = ""


class VersionTagKey(_Body):
    name: str
    version: str | int
    key: str


class StageTransition(_Body):
    name: str
    version: str | int
    stage: str
    archive_existing_versions: bool = False


router = APIRouter()
Repeated = Annotated[list[str] | None, Query()]


# ---------------------------------------------------------------- registered models


@router.post(f"{API}/registered-models/create")
def create_registered_model(body: ModelCreate, store: Door) -> dict[str, Any]:
    tags = _tags(body.tags)
    try:
        made = store.create_model(body.name, description=body.description, tags=tags)
    except Conflict as exc:
        raise _Exists(str(exc)) from exc
    return {"registered_model": wire.registered_model(made)}


@router.get(f"{API}/registered-models/get")
def get_registered_model(store: Door, name: str = "") -> dict[str, Any]:
    return {"registered_model": _model_with_latest(store, name)}


@router.post(f"{API}/registered-models/rename")
def rename_registered_model(body: ModelRename, store: Door) -> dict[str, Any]:
    _model(store, body.name)
    if _maybe_model(store, body.new_name):
        raise _Exists(f"Registered Model (name={body.new_name}) already exists.")
    renamed = store.rename_model(body.name, body.new_name)
    return {"registered_model": wire.registered_model(renamed)}


@router.patch(f"{API}/registered-models/update")
def update_registered_model(body: ModelUpdate, store: Door) -> dict[str, Any]:
    _model(store, body.name)
    changed = store.update_model(body.name, description=body.description or "")
    return {"registered_model": wire.registered_model(changed)}


@router.delete(f"{API}/registered-models/delete")
def delete_registered_model(body: ModelName, store: Door) -> dict[str, Any]:
    _model(store, body.name)
    store.delete_model(body.name)
    return {}


@router.get(f"{API}/registered-models/search")
def search_registered_models(
    store: Door,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: Repeated = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    wanted = search.parse_model_filter(filter)
    exact = wanted.exact_name
    if exact is not None:
        models = [m for m in _maybe_model(store, exact) if wanted(m)]
    else:
        models = [m for m in all_models(store) if wanted(m)]
    page, token = search.page(
        search.sort_models(models, order_by or []),
        max_results=max_results,
        page_token=page_token,
        query_key=search.query_key("models", filter, order_by),
        default_max=search.MODELS_MAX_RESULTS_DEFAULT,
        limit=search.MODELS_MAX_RESULTS_LIMIT,
    )
    found = [_model_with_latest(store, m.name, m) for m in page]
    return _page_reply("registered_models", found, token)


@router.post(f"{API}/registered-models/get-latest-versions")
def latest_versions_post(body: LatestVersions, store: Door) -> dict[str, Any]:
    return _latest(store, body.name, body.stages)


@router.get(f"{API}/registered-models/get-latest-versions")
def latest_versions_get(store: Door, name: str = "", stages: Repeated = None) -> dict[str, Any]:
    return _latest(store, name, stages or [])


@router.post(f"{API}/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, store: Door) -> dict[str, Any]:
    _visible_key(body.key)
    _model(store, body.name)
    store.update_model(body.name, tags={body.key: body.value})
    return {}


@router.delete(f"{API}/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelTagKey, store: Door) -> dict[str, Any]:
    model = _model(store, body.name)
    if body.key in model.tags:  # an absent tag: nothing to do, as in MLflow
        store.update_model(body.name, tags={body.key: None})
    return {}


@router.post(f"{API}/registered-models/alias")
def set_alias(body: AliasSet, store: Door) -> dict[str, Any]:
    mv = _mv(store, body.name, body.version)
    store.set_aliases(mv.name, {body.alias: mv.version}, reason=REASON)
    return {}


@router.delete(f"{API}/registered-models/alias")
def delete_alias(body: AliasName, store: Door) -> dict[str, Any]:
    if body.alias not in _model(store, body.name).aliases:
        return {}  # nothing to delete: as in MLflow, not an error
    store.set_aliases(body.name, {body.alias: None}, reason=REASON)
    return {}


@router.get(f"{API}/registered-models/alias")
def get_by_alias(store: Door, name: str = "", alias: str = "") -> dict[str, Any]:
    if alias.lower() in ("production", "staging", "latest") or not alias or alias.isdigit():
        raise InvalidInput(f"invalid alias {alias!r}: a stage, number or 'latest' is not one")
    try:
        version = store.resolve(_name(name), alias)  # one indexed read, not the model's page
    except NotFound:
        _model(store, name)  # MLflow's message when the model itself is missing
        raise NotFound(f"Registered model alias {alias} not found.") from None
    return {"model_version": wire.model_version(_mv(store, name, version))}


# ---------------------------------------------------------------- model versions


@router.post(f"{API}/model-versions/create")
def create_model_version(body: VersionCreateBody, store: Door, request: Request) -> dict[str, Any]:
    _model(store, body.name)  # MLflow: the registered model must exist first
    tags = _tags(body.tags)
    tags[wire.SOURCE_TAG] = body.source
    if body.run_link:
        tags[wire.RUN_LINK_TAG] = body.run_link
    artifact = _ingest(request, store, body.source)
    meta = VersionCreate.parse(
        {"tags": tags, "run_id": body.run_id or None, "description": body.description}
    )
    made = store.register(body.name, artifact, meta)
    return {"model_version": wire.model_version(made)}


@router.get(f"{API}/model-versions/get")
def get_model_version(store: Door, name: str = "", version: str = "") -> dict[str, Any]:
    return {"model_version": wire.model_version(_mv(store, name, version))}


@router.patch(f"{API}/model-versions/update")
def update_model_version(body: VersionUpdateBody, store: Door) -> dict[str, Any]:
    mv = _mv(store, body.name, body.version)
    changed = store.update_version(mv.name, mv.version, description=body.description or "")
    return {"model_version": wire.model_version(changed)}


@router.delete(f"{API}/model-versions/delete")
def delete_model_version(body: VersionRef, store: Door) -> dict[str, Any]:
    mv = _mv(store, body.name, body.version)
    store.delete_version(mv.name, mv.version)
    return {}


@router.get(f"{API}/model-versions/search")
def search_model_versions(
    store: Door,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: Repeated = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    wanted = search.parse_version_filter(filter)
    exact = wanted.exact_name
    models = _maybe_model(store, exact) if exact is not None else all_models(store)
    found: list[ModelVersion] = []
    for model in models:  # each model read once
        found += [v for v in _all_versions(store, model.name) if wanted(v)]
    page, token = search.page(
        search.sort_versions(found, order_by or []),
        max_results=max_results,
        page_token=page_token,
        query_key=search.query_key("versions", filter, order_by),
        default_max=search.VERSIONS_MAX_RESULTS_DEFAULT,
        limit=search.VERSIONS_MAX_RESULTS_LIMIT,
    )
    return _page_reply("model_versions", [wire.model_version(v) for v in page], token)


@router.post(f"{API}/model-versions/transition-stage")
def transition_stage(body: StageTransition, store: Door) -> dict[str, Any]:
    mv = _mv(store, body.name, body.version)
    name, version = mv.name, mv.version
    stage = Stage.parse(body.stage)
    if stage is Stage.PRODUCTION:
        # modelreg keeps one Production version: the previous one is archived in the
        # same transaction, whatever ``archive_existing_versions`` says.
        with one_at_a_time(store, name, force=False):
            policy = store.get_policy(name).policy
            if mv.stage is Stage.NONE and not policy.required and not policy.approvals.required:
                # A policy that requires no gate behaves as MLflow: straight to
                # Production, as the two recorded moves modelreg makes (the staging
                # rules still apply on the way).
                store.transition(name, version, Stage.STAGING, reason=REASON)
            store.transition(name, version, stage, reason=REASON)
    else:
        store.transition(name, version, stage, reason=REASON)
        if stage is Stage.STAGING and body.archive_existing_versions:
            for other in _all_versions(store, name, Stage.STAGING):
                if other.version != version:
                    store.transition(name, other.version, Stage.ARCHIVED, reason=REASON)
    return {"model_version": wire.model_version(store.get_version(name, version))}


@router.get(f"{API}/model-versions/get-download-uri")
def get_download_uri(
    store: Door, request: Request, name: str = "", version: str = ""
) -> dict[str, Any]:
    mv = _mv(store, name, version)
    if mv.artifact.format == EXTERNAL_FORMAT:
        return {"artifact_uri": wire.source_of(mv)}
    base = str(request.base_url).rstrip("/")
    return {"artifact_uri": f"{base}{PREFIX}{ARTIFACTS}/{MODELS_ROOT}/{mv.name}@{mv.version}"}


@router.post(f"{API}/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, store: Door) -> dict[str, Any]:
    _visible_key(body.key)
    mv = _mv(store, body.name, body.version)
    store.update_version(mv.name, mv.version, tags={body.key: body.value})
    return {}


@router.delete(f"{API}/model-versions/delete-tag")
def delete_model_version_tag(body: VersionTagKey, store: Door) -> dict[str, Any]:
    _visible_key(body.key)
    mv = _mv(store, body.name, body.version)
    if body.key in mv.tags:  # an absent tag: nothing to do, as in MLflow
        store.update_version(body.name, mv.version, tags={body.key: None})
    return {}


# ---------------------------------------------------------------- artifacts (downloads)


@router.get(ARTIFACTS)
def list_artifacts(store: Door, request: Request, path: str = "") -> dict[str, Any]:
    from registry.artifacts import bundle

    mv, inside = _artifact_path(store, path)
    manifest = bundle.read_manifest(_artifacts(request), mv.artifact)
    entries = bundle.listing(manifest, inside)
    files = []
    for entry in entries:
        item: dict[str, Any] = {"path": entry.path, "is_dir": entry.is_dir}
        if entry.size is not None:
            item["file_size"] = entry.size
        files.append(item)
    return {"files": files}


@router.get(ARTIFACTS + "/{path:path}")
def download_artifact(path: str, store: Door, request: Request) -> Response:
    from registry.artifacts import bundle

    mv, inside = _artifact_path(store, path)
    artifacts = _artifacts(request)
    member = bundle.member(bundle.read_manifest(artifacts, mv.artifact), inside)
    folder = Path(tempfile.mkdtemp(prefix="modelreg-download-"))
    local = artifacts.get_file(member, folder / "file")  # verified: size and sha256
    return FileResponse(
        local,
        media_type="application/octet-stream",
        background=BackgroundTask(_remove, folder),
    )


# ---------------------------------------------------------------- the app


def create_mlflow_app(state: Any) -> FastAPI:
    """The sub-application mounted at ``/api/2.0``, sharing the main app's state."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for key in ("store", "config", "reads"):
        setattr(app.state, key, getattr(state, key))
    app.state.artifact_store = None
    app.include_router(router)
    _handlers(app)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        return _error(*_code_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:3]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        return _error(400, "INVALID_PARAMETER_VALUE", "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, "ENDPOINT_NOT_FOUND", "no such MLflow endpoint here")
        if exc.status_code == 405:
            return _error(405, "ENDPOINT_NOT_FOUND", "this endpoint takes another method")
        if exc.status_code == 413:
            return _error(413, "REQUEST_LIMIT_EXCEEDED", str(exc.detail))
        return _error(exc.status_code, "BAD_REQUEST", str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error in the MLflow API", exc_info=exc)
        return _error(500, "INTERNAL_ERROR", f"internal error ({type(exc).__name__})")


class _Exists(Conflict):
    """A create whose name is taken: MLflow's RESOURCE_ALREADY_EXISTS."""


def _code_of(exc: RegistryError) -> tuple[int, str]:
    if isinstance(exc, _Exists):
        return 400, "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, NotFound):
        return 404, "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, Unauthenticated):
        return 401, "UNAUTHENTICATED"
    if isinstance(exc, Forbidden):
        return 403, "PERMISSION_DENIED"
    if isinstance(exc, GateRefused | ReleaseCheckFailed | Conflict):
        return 400, "INVALID_STATE"
    if isinstance(exc, InvalidInput):
        return 400, "INVALID_PARAMETER_VALUE"
    if isinstance(exc, ChecksumMismatch):
        # Stored bytes that fail verification stay failed: a 5xx would have the client
        # retry for minutes, so it hears at once that the registry will not serve them.
        return 409, "INVALID_STATE"
    if isinstance(exc, RegistryUnavailable):
        return 503, "TEMPORARILY_UNAVAILABLE"
    return 503, "TEMPORARILY_UNAVAILABLE"  # storage and artifact errors: the server's side


def _error(status: int, code: str, message: str) -> JSONResponse:
    line = " ".join(message.split())[:4000]
    return JSONResponse({"error_code": code, "message": line}, status_code=status)


# ---------------------------------------------------------------- helpers


def _name(name: str) -> str:
    if not name:
        raise InvalidInput("missing value for required parameter 'name'")
    return check_model_name(name)


def _model(store: Door, name: str) -> Any:
    """The model, or MLflow's own not-found message."""
    try:
        return store.get_model(_name(name))
    except NotFound as exc:
        raise NotFound(f"Registered Model with name={name} not found") from exc


def _mv(store: Door, name: str, version: str | int) -> ModelVersion:
    """The version, or MLflow's own not-found message."""
    number = _version(version)
    try:
        return store.get_version(_name(name), number)
    except NotFound as exc:
        raise NotFound(f"Model Version (name={name}, version={number}) not found") from exc


def _version(value: str | int) -> int:
    text = str(value).strip()
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text) > 10
        or not 1 <= int(text) <= INT32_MAX
    ):
        raise InvalidInput(f"Parameter 'version' must be an integer, got '{value}'")
    return int(text)


def _tags(tags: list[_Tag]) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag in tags:
        _visible_key(tag.key)
        found[tag.key] = tag.value
    return found


def _visible_key(key: str) -> None:
    if key.startswith(wire.HIDDEN_TAG_PREFIX):
        raise InvalidInput(f"tag {key!r}: keys under {wire.HIDDEN_TAG_PREFIX!r} are the registry's")


def _page_reply(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    """One page of a search as MLflow answers it (no token on the last page)."""
    body: dict[str, Any] = {key: items}
    if token:
        body["next_page_token"] = token
    return body


def _maybe_model(store: Door, name: str) -> list[Any]:
    try:
        return [store.get_model(name)]
    except (NotFound, InvalidInput):
        return []


def _newest_in_each_stage(store: Door, name: str) -> list[ModelVersion]:
    """The newest version of each stage, all MLflow's ``latest_versions`` shows: one
    one-row read per stage, however many versions the model has."""
    return [v for stage in Stage for v in store.list_versions(name, limit=1, stage=stage)]


def _all_versions(store: Door, name: str, stage: Stage | None = None) -> list[ModelVersion]:
    """Every version of the model (in ``stage``), newest first, read a page at a time:
    MLflow's search filters, sorts and pages the whole set itself."""
    found: list[ModelVersion] = []
    while True:
        before = found[-1].version if found else None
        page = store.list_versions(name, limit=MAX_PAGE, stage=stage, before=before)
        found += page
        if len(page) < MAX_PAGE:
            return found


def _model_with_latest(store: Door, name: str, model: Any = None) -> dict[str, Any]:
    model = model or _model(store, name)
    versions = _newest_in_each_stage(store, model.name)
    return wire.registered_model(model, wire.latest_per_stage(versions))


def _latest(store: Door, name: str, stages: list[str]) -> dict[str, Any]:
    for stage in stages:
        Stage.parse(stage)  # InvalidInput names the stages there are
    model = _model(store, name)
    versions = _newest_in_each_stage(store, model.name)
    return {
        "model_versions": [wire.model_version(v) for v in wire.latest_per_stage(versions, stages)]
    }


def _ingest(request: Request, store: Door, source: str) -> ArtifactRef:
    """What a new version's bytes are: a version of this registry's (``models:/NAME/V``,
    as ``copy_model_version`` sends it: the same verified bytes), the source read into
    a bundle in this server's artifact store, or, when the server cannot read it, an
    external reference: the source URI itself, unverified."""
    from registry.artifacts import bundle

    copied = _registry_source(store, source)
    if copied is not None:
        return copied
    config = request.app.state.config
    if config.mlflow_tracking_url and source.startswith(("runs:/", "models:/m-")):
        from registry.mlflow_api.tracking import read_tracked

        tracked = read_tracked(
            _artifacts(request), config.mlflow_tracking_url, source, roots=config.source_roots
        )
        if tracked is not None:
            return tracked
    if config.source_roots:
        read = bundle.ingest_source(_artifacts(request), source, roots=config.source_roots)
        if read is not None:
            return read
    text = source.encode()
    return ArtifactRef(
        uri=source, sha256=hashlib.sha256(text).hexdigest(), size=len(text), format=EXTERNAL_FORMAT
    )


def _registry_source(store: Door, source: str) -> ArtifactRef | None:
    """The artifact of ``models:/NAME/VERSION``, ``models:/NAME/STAGE`` or
    ``models:/NAME@ALIAS`` when it names a version here; None for any other source."""
    if not source.startswith("models:/"):
        return None
    path = source.removeprefix("models:/").strip("/")
    name, at, alias = path.partition("@")
    if not at:
        name, _, alias = path.rpartition("/")
    try:
        version = store.resolve(check_model_name(name), alias)
        return store.get_version(name, version).artifact
    except (NotFound, InvalidInput):
        return None  # not a version of this registry (an MLflow ``models:/m-…``): external


def _artifacts(request: Request) -> Any:
    state = request.app.state
    if state.artifact_store is None:
        from registry.artifacts import open_store

        state.artifact_store = open_store(state.config.artifacts_at)
    return state.artifact_store


def _artifact_path(store: Door, path: str) -> tuple[ModelVersion, str]:
    """``models/NAME@V/inner/path`` -> the version and the path inside its bundle."""
    from registry.artifacts.bundle import BUNDLE_FORMAT

    head, _, rest = path.strip("/").partition(f"{MODELS_ROOT}/")
    if head or not rest:
        raise NotFound(f"no artifact {path!r} here: downloads are under {MODELS_ROOT}/NAME@VERSION")
    name, at, tail = rest.partition("@")
    number, _, inside = tail.partition("/")
    if not at:
        raise NotFound(f"no artifact {path!r} here: expected {MODELS_ROOT}/NAME@VERSION")
    mv = _mv(store, name, number)
    if mv.artifact.format != BUNDLE_FORMAT:
        raise NotFound(f"version {mv.version} of {mv.name!r} has no files here: {mv.artifact.uri}")
    return mv, inside


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
