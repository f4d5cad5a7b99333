"""The server itself: liveness and who the caller is."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from registry.server.deps import Caller, reply, root_store

router = APIRouter(tags=["server"])


@router.get("/health", summary="Liveness and the schema revision (no token needed)")
def health(request: Request) -> Response:
    store = root_store(request)
    return reply(
        {"ok": True, "schema": store.db.schema_revision(), "latest_seq": store.latest_seq()}
    )


@router.get("/whoami", summary="The verified caller: token name, role and scopes")
def whoami(who: Caller) -> Response:
    return reply({"name": who.name, "role": who.role.value, "scopes": [str(s) for s in who.scopes]})
