"""The registry server: a FastAPI app over one SQL store, stateless between requests.

Several server processes (``--workers N``, or several machines) can share one
PostgreSQL database: every request reads and writes through it, and nothing a
request needs lives only in one process's memory. Each request is authenticated
(``deps.principal``) and served through ``GuardedStore``, the same rules for every
route; ``errors`` maps every failure to one JSON shape. The one thing a process keeps
between requests is a cache of what the database said (``reads``), which its feed
follower keeps current and which every write through it updates before its reply.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.config import ServerConfig
from registry.errors import RegistryError
from registry.server import errors
from registry.server.idempotency import IdempotentWrites
from registry.server.limits import BodyLimit
from registry.server.reads import FastReads, ReadCache, WriteMarks
from registry.store.sql import SqlStore

log = logging.getLogger("registry.server")
API = "/api/v1"
SERVER_ACTOR = "modelreg-server"

# Routers, each "module:attribute"; every one is mounted under /api/v1.
ROUTERS = (
    "registry.server.routes.meta:router",
    "registry.server.routes.models:router",
    "registry.server.routes.pointers:router",
    "registry.server.routes.release:router",
    "registry.server.routes.app_releases:router",
    "registry.server.routes.queries:router",
    "registry.server.routes.fleet:router",
    "registry.server.routes.access:router",
    "registry.server.routes.events:router",
    "registry.server.routes.webhooks:router",
    "registry.server.routes.subjects:router",
    "registry.server.routes.retention:router",
    "registry.server.routes.rollback_plan:router",
)
# Background services started with the app: each a callable (app, config) -> stop().
SERVICES: tuple[str, ...] = (
    "registry.server.feed:start",
    "registry.webhook_dispatch:start",
)


def create_app(config: ServerConfig, *, store: SqlStore | None = None) -> Any:
    """The ASGI app: FastAPI inside the write marks, the idempotency layer, the body
    limit and, outermost, the resolves answered from memory (``reads``)."""
    import importlib

    root = store or SqlStore(config.registry_url, actor=SERVER_ACTOR, group_commit=True)
    replica = _read_replica(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stops: list[Callable[[], None]] = []
        for target in SERVICES:
            module, attribute = target.split(":")
            stops.append(getattr(importlib.import_module(module), attribute)(app, config))
        try:
            yield
        finally:
            for stop in reversed(stops):
                stop()
            root.close()
            if replica is not None:
                replica.close()

    api = FastAPI(
        title="modelreg",
        summary="A model registry whose release gates hold at every door.",
        version=_version(),
        lifespan=lifespan,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    api.state.store = root
    api.state.config = config
    api.state.reads = ReadCache()
    api.state.replica = replica
    if replica is not None:
        from registry.store.replicated import ReadMark, ReplicaLag, display_url

        api.state.replica_lag = ReplicaLag(display_url(replica.url))
        api.state.written = ReadMark()  # the newest sequence number this process wrote
    for target in ROUTERS:
        module, attribute = target.split(":")
        api.include_router(
            getattr(importlib.import_module(module), attribute),
            prefix=API,
            responses=errors.OPENAPI_RESPONSES,
        )
    _handlers(api)
    _document_auth(api)
    from registry.server.mlflow import PREFIX, create_mlflow_app

    api.mount(PREFIX, create_mlflow_app(api.state))
    marked = WriteMarks(api, api.state.reads)
    return FastReads(BodyLimit(IdempotentWrites(marked, root), config.max_body_bytes), api.state)


def _read_replica(config: ServerConfig) -> SqlStore | None:
    """The read-only store on ``config.read_registry_url`` (``deps.door`` reads through
    it when it has caught up), or None. Never migrated: a standby replays the primary's."""
    if config.read_registry_url is None:
        return None
    from registry.store.replicated import read_only_url

    return SqlStore(read_only_url(config.read_registry_url), actor=SERVER_ACTOR, migrate=False)


def app_from_env() -> Any:
    """The uvicorn factory of each worker process: the config ``modelreg server`` exported."""
    return create_app(ServerConfig.from_env())


def _handlers(api: FastAPI) -> None:
    @api.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        status, payload = errors.of_registry_error(exc)
        return JSONResponse(payload, status_code=status)

    @api.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            errors.body("invalid_request", _validation_message(exc)), status_code=422
        )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = errors.HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 413:
            code = "too_large"
        return JSONResponse(
            errors.body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @api.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error", exc_info=exc)
        return JSONResponse(
            errors.body("internal", f"internal error ({type(exc).__name__})"), status_code=500
        )


def _document_auth(api: FastAPI) -> None:
    """Declare the bearer token and the two request headers every client may send in the
    published schema (they are read by dependencies and middleware, which FastAPI does
    not see)."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `modelreg token create` (MODELREG_TOKEN).",
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if path.endswith("/health"):
                    continue
                operation["security"] = [{"bearer": []}]
                if method in ("post", "put", "patch", "delete"):
                    operation.setdefault("parameters", []).extend(_WRITE_HEADERS)
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


_WRITE_HEADERS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        "description": "A retry with the same key (same token, same request) gets the "
        "first reply instead of a second change.",
    },
    {
        "name": "X-Modelreg-Origin",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 4096},
        "description": "The flow run behind the change (an Origin as JSON), kept in the "
        "event's details.",
    },
]


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
    return "invalid request: " + "; ".join(problems)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelreg")
    except PackageNotFoundError:
        return "0"
