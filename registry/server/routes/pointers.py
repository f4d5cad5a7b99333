"""REST resources: what serves, and moving it: stages, aliases, rollback, resolve.

Every move takes ``expected_generation`` (a stale one is 409, nothing changed) and goes
through the store's release gates (a refusal is 422 ``gate_refused`` with the reasons,
recorded in history). ``force`` is the break-glass, admin only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints, field_validator

from registry.guard import GuardedStore
from registry.models import PointerChange, Stage, check_model_name
from registry.release.lock import promotion_lock
from registry.server.deps import Door, reply
from registry.server.reads import MIN_SEQ_HEADER, ReadCache, resolved_body
from registry.server.routes.params import (
    Body,
    Count,
    StoredText,
    VersionNumber,
    VersionPath,
    ref_of,
)

router = APIRouter(tags=["pointers"])
# A request waits this long for another promotion or rollback of the model, then gets
# 503 (LockTimeout) and the client retries: a thread is not held for minutes.
LOCK_WAIT_S = 30.0


@contextmanager
def one_at_a_time(store: GuardedStore, name: str, *, force: bool) -> Iterator[None]:
    """The model's promotion lock, as the pipeline's steps take it against a database:
    clients of a server take none (``promotion_lock`` skips http URLs), so the server
    holds it around each promotion and rollback it makes, for callers allowed to."""
    check_model_name(name)
    store.may_move_production(name, force=force)
    with promotion_lock(store.inner.url, name, timeout=LOCK_WAIT_S):  # type: ignore[attr-defined]
        yield


Reason = Annotated[StoredText, StringConstraints(max_length=4096)]


class _Move(Body):
    expected_generation: Count | None = None
    reason: Reason | None = None
    force: bool = False


class StageMove(_Move):
    stage: Stage

    @field_validator("stage", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        # ``production`` reads as well as ``Production``, as on the command line.
        return Stage.parse(value) if isinstance(value, str) else value


class AliasMoves(_Move):
    moves: dict[StoredText, VersionNumber | None] = Field(
        description="alias -> version; null deletes the alias"
    )


class Rollback(_Move):
    to: VersionNumber | None = None
    reason: Reason  # a rollback always says why


class Resolved(BaseModel):
    name: str
    version: int


@router.put(
    "/stage/{name:path}@{version}",
    response_model=PointerChange,
    summary="Move a version to a stage (Production: through the promotion gate)",
)
def transition(name: str, version: VersionPath, body: StageMove, store: Door) -> Response:
    production = body.stage is Stage.PRODUCTION
    serial = one_at_a_time(store, name, force=body.force) if production else nullcontext()
    with serial:
        change = store.transition(
            name,
            version,
            body.stage,
            expected_generation=body.expected_generation,
            reason=body.reason,
            force=body.force,
        )
    return reply(change)


@router.patch(
    "/aliases/{name:path}",
    response_model=PointerChange,
    summary="Move or delete several aliases in one atomic change",
)
def set_aliases(name: str, body: AliasMoves, store: Door) -> Response:
    change = store.set_aliases(
        name,
        body.moves,
        expected_generation=body.expected_generation,
        reason=body.reason,
        force=body.force,
    )
    return reply(change)


@router.post(
    "/rollback/{name:path}",
    response_model=PointerChange,
    summary="Put back the previous Production version (or `to`)",
)
def rollback(name: str, body: Rollback, store: Door) -> Response:
    with one_at_a_time(store, name, force=body.force):
        change = store.rollback(
            name,
            to=body.to,
            expected_generation=body.expected_generation,
            reason=body.reason,
            force=body.force,
        )
    return reply(change)


MinSeq = Annotated[
    int | None,
    Header(
        alias=MIN_SEQ_HEADER,
        ge=0,
        le=2**62,
        description="The newest event sequence number the client has seen (a write's "
        "`X-Modelreg-Seq`, the feed): a server process that has not read the log that "
        "far answers from the database, so the answer is never older than that event.",
    ),
]


@router.get(
    "/resolve/{name:path}@{ref}",
    response_model=Resolved,
    summary="The version a ref (number, stage, latest or alias) points at",
)
def resolve(name: str, ref: str, store: Door, request: Request, min_seq: MinSeq = None) -> Response:
    """Answered from this process's memory when it can (``registry.server.reads``); here
    from the database, remembered for next time."""
    check_model_name(name)  # the store checks it only after a miss, and a NUL must not reach SQL
    reads: ReadCache = request.app.state.reads
    tick = reads.clock()
    body = resolved_body(name, store.resolve(name, ref_of(ref)))
    reads.remember_resolve(name, ref, body, tick)
    return Response(body, media_type="application/json")
