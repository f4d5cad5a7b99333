"""REST resources: bearer tokens (admin only; a secret is shown once, when it is made)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from registry.auth import Role, Token
from registry.server.deps import Door, reply
from registry.server.routes.params import AfterName, Body, LimitQuery, StoredText, many

router = APIRouter(tags=["tokens"])


class TokenCreate(Body):
    name: StoredText
    role: Role
    scopes: list[StoredText] = Field(default_factory=lambda: ["*"], max_length=100)


class NewToken(BaseModel):
    token: Token
    secret: str = Field(description="the bearer secret: shown this once, never stored")


@router.post("/tokens", status_code=201, response_model=NewToken, summary="Create a token")
def create_token(body: TokenCreate, store: Door) -> Response:
    token, secret = store.create_token(body.name, body.role, scopes=body.scopes)
    return reply({"token": token.model_dump(mode="json"), "secret": secret}, 201)


@router.get("/tokens", response_model=list[Token], summary="Tokens by name, revoked ones too")
def list_tokens(store: Door, limit: LimitQuery = 1000, after: AfterName = None) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``after`` the last name."""
    return reply(many(store.list_tokens(limit=limit, after=after)))


@router.delete("/tokens/{name}", response_model=Token, summary="Revoke a token")
def revoke_token(name: str, store: Door, request: Request) -> Response:
    revoked = store.revoke_token(name)
    request.app.state.reads.forget_tokens()  # here at once; other processes at their next poll
    return reply(revoked)
