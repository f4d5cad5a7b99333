"""Request size limits, as plain ASGI (no per-request task or body copy).

A declared ``Content-Length`` over the limit is refused before the body is read; a
body without one (chunked) is counted as it arrives and refused once it passes the
limit. Either way the answer is 413 with the API's error body, and the endpoint
never runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException

from registry.server.errors import body

Scope = dict[str, Any]
Message = dict[str, Any]


class _TooLarge(HTTPException):
    """Raised while the endpoint reads the body: FastAPI passes an HTTPException on
    (the app's handler answers 413) where it would turn anything else into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over this server's limit of {limit} bytes")


MLFLOW_PREFIX = "/api/2.0/"
# A subject manifest lists every subject key of a dataset version (~67 bytes each as
# JSON): 100,000 subjects are ~6.7 MB. That one route may carry up to this much.
MANIFEST_MAX_BYTES = 128 << 20
_MANIFEST_ROUTE = re.compile(r"^/api/v1/datasets/.+/versions/[^/]+/manifest$")


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        path = scope.get("path", "")
        mlflow = path.startswith(MLFLOW_PREFIX)
        limit = self.max_bytes
        if scope.get("method") == "POST" and _MANIFEST_ROUTE.match(path):
            limit = max(limit, MANIFEST_MAX_BYTES)
        if declared is not None and declared > limit:
            await _refuse(send, limit, mlflow=mlflow)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:  # read outside the FastAPI app (the idempotency layer)
            await _refuse(send, limit, mlflow=mlflow)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Any, limit: int, *, mlflow: bool = False) -> None:
    message = f"the request body is over this server's limit of {limit} bytes"
    # The MLflow API answers in MLflow's error shape, whoever refuses the request.
    shaped = (
        {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message}
        if mlflow
        else body("too_large", message)
    )
    payload = json.dumps(shaped).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
