"""What every endpoint is handed: the verified caller and the registry as they may use it."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from registry.auth import Principal, parse_bearer
from registry.errors import InvalidInput
from registry.guard import GuardedStore
from registry.models import Origin
from registry.server.reads import MIN_SEQ_HEADER, ReadCache
from registry.server.routes.params import storable
from registry.store.base import RegistryStore
from registry.store.sql import SqlStore

ORIGIN_HEADER = "x-modelreg-origin"
MAX_ORIGIN = 4096


def root_store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


async def principal(request: Request) -> Principal:
    """The caller, verified: ``Unauthenticated`` (401) without a valid, unrevoked token.

    A token this process verified before is not looked up again: the read cache forgets
    every token when one is revoked (here at once, elsewhere at the feed's next poll),
    and every write transaction re-checks its token inside itself (``door``), so a
    revoked token changes nothing from the moment its revocation commits.
    """
    header = request.headers.get("authorization")
    reads: ReadCache = request.app.state.reads
    if header is not None:
        known = reads.token(header)
        if known is not None:
            return known
    tick = reads.token_clock()
    who = await run_in_threadpool(_authenticate, root_store(request), header)
    if header is not None:
        reads.remember_token(header, who, tick)
    return who


def _authenticate(store: SqlStore, header: str | None) -> Principal:
    return Principal.of(store.authenticate(parse_bearer(header)))


async def door(request: Request, who: Annotated[Principal, Depends(principal)]) -> GuardedStore:
    """The registry acting as the token's name (with the client's flow run as origin,
    if it sent one), behind the token's grants.

    ``async`` because it does no I/O (a view of the root store, a parsed header): FastAPI
    would otherwise send it to the thread pool, a hand-off that costs more than the work.
    """
    inner: RegistryStore = root_store(request).acting_as(
        who.name, origin=_origin(request), token=who.name
    )
    # The MLflow sub-app shares no replica (its state has none): its reads stay on the primary.
    if getattr(request.app.state, "replica", None) is not None:
        inner = _replicated(request, inner)
    return GuardedStore(inner, who)


def _replicated(request: Request, primary: RegistryStore) -> RegistryStore:
    """``primary`` with its reads from the server's read replica while the replica has
    reached what this answer must not be older than: the client's ``X-Modelreg-Min-Seq``,
    the newest write of this process, and what its feed follower has already applied
    (read at the moment of each read, after the route took the cache's clock, so a
    cache fill never stores an answer older than an event the follower forgot it for)."""
    from registry.store.replicated import ReplicatedStore

    state = request.app.state
    min_seq = _min_seq(request)

    def floor() -> int:
        feed = getattr(state, "feed", None)
        return max(min_seq, feed.latest if feed is not None else 0)

    return ReplicatedStore(
        primary, state.replica, lag=state.replica_lag, mark=state.written, floor=floor
    )


def _min_seq(request: Request) -> int:
    raw = request.headers.get(MIN_SEQ_HEADER)
    return int(raw) if raw is not None and raw.isdigit() and len(raw) <= 18 else 0


Door = Annotated[GuardedStore, Depends(door)]
Caller = Annotated[Principal, Depends(principal)]


def _origin(request: Request) -> Origin | None:
    raw = request.headers.get(ORIGIN_HEADER)
    if not raw:
        return None
    if len(raw) > MAX_ORIGIN:
        raise InvalidInput(f"the {ORIGIN_HEADER} header is over {MAX_ORIGIN} bytes")
    try:
        return Origin.model_validate(storable(json.loads(raw)))  # no NUL or lone surrogate
    except ValueError as exc:
        raise InvalidInput(f"malformed {ORIGIN_HEADER} header: expected an Origin as JSON") from exc


def reply(value: BaseModel | list[BaseModel] | dict[str, object], status: int = 200) -> Response:
    """A model (or list of models) as JSON, serialised once by pydantic."""
    if isinstance(value, BaseModel):
        content = value.model_dump_json()
    elif isinstance(value, list):
        content = "[" + ",".join(item.model_dump_json() for item in value) + "]"
    else:
        content = json.dumps(value, default=str)
    return Response(content, status_code=status, media_type="application/json")
