"""REST resources: the event log as a change feed (pages, long-poll, server-sent events).

Subscribers read this process's ``Feed`` (``registry.server.feed``): recent events
from memory, so a change costs one database read however many wait for it. A
subscriber older than the feed's memory reads its pages from the database through
its ``Door``, like any other read, until it catches up. Either way a scoped token
receives only the events of models it may read (``GuardedStore.sees``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from registry.auth import parse_bearer
from registry.errors import InvalidInput, RegistryError, RegistryUnavailable, Unauthenticated
from registry.guard import GuardedStore
from registry.models import Event, check_model_name
from registry.server.deps import Door, reply, root_store
from registry.server.feed import PAGE, Entry, Feed
from registry.store.sql.queries import MAX_EVENTS

log = logging.getLogger("registry.server")
router = APIRouter(tags=["events"])

MAX_SEQ = 2**63 - 1  # the log's sequence numbers are 64-bit
MAX_WAIT_S = 60.0  # a longer ``wait`` is cut to this: proxies drop idle requests
HEARTBEAT_S = 15.0  # a comment on an idle stream, so both ends see a dead line
RETRY_MS = 1000  # what an EventSource waits before it reconnects

Since = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="Events with a sequence number above this")
]
Model = Annotated[str | None, Query(description="Only this model's events")]


@router.get(
    "/events",
    response_model=list[Event],
    summary="The change feed: events after `since`, oldest first; with `wait`, a long-poll",
)
async def events(
    request: Request,
    door: Door,
    since: Since = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = PAGE,
    model: Model = None,
    wait: Annotated[
        float,
        Query(ge=0, description=f"Seconds to wait while there is none (at most {MAX_WAIT_S:g})"),
    ] = 0,
    kinds: Annotated[
        str | None, Query(description="Only these kinds (comma-separated), e.g. stage,alias")
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="Events with a sequence number below this")
    ] = None,
    newest: Annotated[
        bool, Query(description="The newest `limit` events of the range (still oldest first)")
    ] = False,
) -> Response:
    wanted = None if kinds is None else [k.strip() for k in kinds.split(",") if k.strip()]
    if wait <= 0:  # a plain read sees every committed event, even one the feed has not yet
        batch = await run_in_threadpool(
            functools.partial(
                door.events,
                since=since,
                limit=limit,
                model=model,
                kinds=wanted,
                before=before,
                newest=newest,
            )
        )
        found = [event.model_dump_json() for event in batch]
    elif wanted is not None or before is not None or newest:
        raise InvalidInput(
            "wait follows the feed forward from since: it takes no kinds, before or newest"
        )
    else:
        if model is not None:
            check_model_name(model)
        entries, _through = await _page(
            _feed(request), door, since, limit=limit, model=model, wait=min(wait, MAX_WAIT_S)
        )
        found = [entry.json for entry in entries]
    return Response("[" + ",".join(found) + "]", media_type="application/json")


@router.get("/events/latest", summary="The newest event's sequence number (0: none yet)")
async def latest(door: Door) -> Response:
    return reply({"seq": await run_in_threadpool(door.latest_seq)})


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    summary="Server-sent events from `since` (or the Last-Event-ID header; else from now)",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    door: Door,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Resume after this event")
    ] = None,
    model: Model = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    if model is not None:
        check_model_name(model)
    start = _resume_from(last_event_id) if last_event_id is not None else since
    if start is None:
        start = await run_in_threadpool(door.latest_seq)
    secret = parse_bearer(request.headers.get("authorization"))
    return StreamingResponse(
        _frames(request, _feed(request), door, start, model, secret),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _feed(request: Request) -> Feed:
    feed: Feed | None = getattr(request.app.state, "feed", None)
    if feed is None:
        raise RegistryUnavailable("the event feed is not running in this server")
    return feed


def _resume_from(header: str) -> int:
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQ:
        raise InvalidInput(f"Last-Event-ID must be an event's sequence number, not {header!r}")
    return int(text)


async def _page(
    feed: Feed, door: GuardedStore, since: int, *, limit: int, model: str | None, wait: float
) -> tuple[list[Entry], int]:
    """Events after ``since`` (waiting up to ``wait`` seconds while there is none), and
    the sequence number up to which the log has been looked through."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    visible = None if door.everything else door.sees  # a scoped token's models only
    while True:
        found = feed.after(since, model=model, limit=limit, visible=visible)
        if found is None:  # older than the feed's memory: the database has it
            seen = feed.latest
            batch = await run_in_threadpool(door.events, since=since, limit=limit, model=model)
            if batch:
                return [Entry.of(event) for event in batch], batch[-1].seq
            found = [], max(since, seen)  # the read saw everything the feed had seen
        entries, since = found
        if entries:
            return entries, since
        remaining = deadline - loop.time()
        if remaining <= 0 or not await feed.wait(since, remaining):
            return [], since


async def _frames(
    request: Request,
    feed: Feed,
    door: GuardedStore,
    since: int,
    model: str | None,
    secret: str,
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n: modelreg events after {since}\n\n"
    try:
        while not feed.closing:
            entries, since = await _page(
                feed, door, since, limit=PAGE, model=model, wait=HEARTBEAT_S
            )
            if entries:
                yield "".join(entry.frame for entry in entries)
            elif not feed.closing:
                if not await _still_valid(request, secret):
                    return
                yield ": heartbeat\n\n"
    except RegistryError as exc:  # the database failed a catch-up read: the client resumes
        log.warning("event stream ended: %s", exc)


async def _still_valid(request: Request, secret: str) -> bool:
    """The stream's token, checked again at each heartbeat: revoking it ends the stream."""
    try:
        await run_in_threadpool(root_store(request).authenticate, secret)
    except Unauthenticated:
        return False
    except RegistryError:  # the database is down, not the token: keep the stream
        return True
    return True
