"""The one place that turns an error into an HTTP status and a JSON body.

    {"error": {"code": "gate_refused", "message": "...", "reasons": ["..."]}}

``code`` is stable (clients switch on it, never on the message):

    400 invalid_input      bad name, NaN metric, malformed filter or metadata
    401 unauthenticated    no token, a malformed, unknown or revoked one
    403 forbidden          the token's role or scope does not allow it
    404 not_found          no such model, version, alias, token, webhook, route
    405 method_not_allowed
    409 conflict           stale generation, illegal transition, name taken, reused key
    413 too_large          the request body is over the server's limit
    422 gate_refused       a release gate said no (``reasons``); recorded in history
    422 check_failed       a release check failed
    422 invalid_request    the request does not match the API's schema
    503 unavailable        the database cannot be reached or stayed locked: retry
    500 internal           a bug: never expected, logged with its traceback
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from registry.errors import (
    ArtifactError,
    Conflict,
    Forbidden,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    ReleaseCheckFailed,
    StorageError,
    Unauthenticated,
)

log = logging.getLogger("registry.server")

# Most specific first: a subclass must come before its base.
STATUS: tuple[tuple[type[RegistryError], int, str], ...] = (
    (InvalidInput, 400, "invalid_input"),
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (GateRefused, 422, "gate_refused"),
    (ReleaseCheckFailed, 422, "check_failed"),
    (RegistryUnavailable, 503, "unavailable"),
    (StorageError, 503, "storage_error"),
    (ArtifactError, 503, "artifact_error"),
)
HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": _one_line(message), **extra}}


def of_registry_error(exc: RegistryError) -> tuple[int, dict[str, Any]]:
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, GateRefused):
                extra["reasons"] = list(exc.reasons)
            return status, body(code, str(exc) or code, **extra)
    log.error("unmapped registry error", exc_info=exc)
    return 500, body("internal", f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())[:4000]


class ErrorDetail(BaseModel):
    code: str
    message: str
    reasons: list[str] | None = None


class ErrorReply(BaseModel):
    """Every error reply's shape."""

    error: ErrorDetail


OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorReply, "description": description}
    for status, description in (
        (400, "invalid input"),
        (401, "no valid token"),
        (403, "the token's role or scope does not allow it"),
        (404, "not found"),
        (409, "conflict: a stale generation, an illegal transition, a name taken"),
        (413, "the request body is over the server's limit"),
        (422, "a release gate refused (with reasons), or the request does not match the schema"),
        (503, "the registry database is unavailable: retry"),
    )
}
