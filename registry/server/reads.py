"""Reads one server process answers from memory: who a token is, and what a ref points at.

A resolve is the call a serving fleet makes most, and through the full stack it costs
a token lookup, a query, two thread-pool hops and FastAPI's routing, about 1.5 ms of
server CPU. Here it costs a few dictionary reads on the event loop, and nothing else.

What is kept, and for how long:

- **Tokens, for reads.** A token the database verified is remembered (by its
  ``Authorization`` header). A read (GET) from a remembered token skips the lookup.
  Writes are verified in the database every time, so a revoked token changes nothing
  anywhere from the moment its revocation commits. The feed's follower counts revoked
  tokens on every poll and forgets every remembered token when the count moves; the
  server that revokes forgets them at once.
- **Resolves.** ``name@ref → version`` as the route last read it from the database,
  answered only to a token whose scopes may read ``name`` (``registry.auth.may_read``):
  any other gets the app's 404, as if the cache were empty.
  Every event of a model, as the feed's follower reads it from the log, forgets that
  model; a write through this process forgets the models it touched before its reply
  leaves, so a client of this process reads its own writes.
- **Freshness.** Answers come from memory only while the follower is current: it has
  read the log within ``stale_s`` (1 s by default). A server that cannot reach its
  database answers from it, as before (503).
- **Read-your-writes across processes.** A write's reply carries ``X-Modelreg-Seq``,
  the newest sequence number it wrote; a read may send ``X-Modelreg-Min-Seq``, and a
  process whose follower has not read that far answers from the database. The remote
  client sends the newest sequence number it has seen, from writes, the feed and the
  log, so a resolver that heard of a promotion never resolves the old version. A
  client that sends nothing sees another process's or the CLI's change within the
  follower's poll (``feed_poll_s``, 50 ms by default; at once on PostgreSQL).

A fill cannot put back what an event made stale: the route takes the cache's clock
before it reads the database, and a model forgotten since that tick is not filled.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from registry.auth import Principal, may_read
from registry.store.sql.common import APPENDED

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RESOLVE_PATH = "/api/v1/resolve/"
MIN_SEQ_HEADER = "x-modelreg-min-seq"
SEQ_HEADER = "x-modelreg-seq"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_TOKENS = 10_000  # remembered headers; past it, forget them all and start over
MAX_RESOLVES = 100_000  # remembered (model, ref) answers; the same


def resolved_body(name: str, version: int) -> bytes:
    """The resolve route's reply body, byte for byte whichever path sends it."""
    return json.dumps({"name": name, "version": version}).encode()


class ReadCache:
    """What this process may answer without the database (see the module's doc).

    Lookups (``token``, ``resolved``) read plain dictionaries without a lock: the event
    loop calls them, and a forget swaps in a new dictionary rather than editing one.
    Fills and forgets take the lock, from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = 0  # ticks once per forget
        self._floor = 0  # the clock at the last forget-everything
        self._forgotten: dict[str, int] = {}  # model -> clock when last forgotten
        self._token_clock = 0
        self._tokens: dict[str, Principal] = {}
        self._resolved: dict[str, dict[str, bytes]] = {}
        self._resolves = 0

    # ------------------------------------------------------------ lookups (any thread)

    def token(self, header: str) -> Principal | None:
        return self._tokens.get(header)

    def resolved(self, name: str, ref: str) -> bytes | None:
        refs = self._resolved.get(name)
        return None if refs is None else refs.get(ref)

    # ------------------------------------------------------------ fills

    def clock(self) -> int:
        """The tick to pass to ``remember_resolve``: take it before reading the database."""
        return self._clock

    def token_clock(self) -> int:
        return self._token_clock

    def remember_token(self, header: str, who: Principal, tick: int) -> None:
        with self._lock:
            if tick != self._token_clock:  # a revocation was seen since the lookup began
                return
            if len(self._tokens) >= MAX_TOKENS:
                self._tokens = {}
            self._tokens[header] = who

    def remember_resolve(self, name: str, ref: str, body: bytes, tick: int) -> None:
        with self._lock:
            if max(self._floor, self._forgotten.get(name, 0)) > tick:
                return  # the model changed since the read began: what it read may be old
            if self._resolves >= MAX_RESOLVES:
                self._resolved, self._resolves = {}, 0
            refs = self._resolved.setdefault(name, {})
            if ref not in refs:
                self._resolves += 1
            refs[ref] = body

    # ------------------------------------------------------------ forgets

    def forget_models(self, names: set[str]) -> None:
        if not names:
            return
        with self._lock:
            self._clock += 1
            resolved = self._resolved
            if any(name in resolved for name in names):
                resolved = dict(resolved)
                for name in names:
                    self._resolves -= len(resolved.pop(name, {}))
                self._resolved = resolved
            for name in names:
                self._forgotten[name] = self._clock

    def forget_everything(self) -> None:
        with self._lock:
            self._clock += 1
            self._floor = self._clock
            self._forgotten = {}
            self._resolved, self._resolves = {}, 0
        self.forget_tokens()

    def forget_tokens(self) -> None:
        with self._lock:
            self._token_clock += 1
            self._tokens = {}


class FastReads:
    """Plain ASGI in front of the app: a resolve it can answer from memory is answered
    here; anything else (a miss, a query string, an unknown token, a follower behind
    the client's ``X-Modelreg-Min-Seq``) goes to the app, which checks and answers it
    as it always did. Nothing is refused here, so every rule stays in one place."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(RESOLVE_PATH)
            and not scope["query_string"]
        ):
            body = self._answer(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> bytes | None:
        feed = getattr(self.state, "feed", None)
        cache: ReadCache = self.state.reads
        if feed is None or not feed.current():
            return None
        auth = min_seq = None
        for key, value in scope["headers"]:
            if key == b"authorization" and auth is None:
                auth = value.decode("latin-1")
            elif key == b"x-modelreg-min-seq":
                min_seq = value
        who = None if auth is None else cache.token(auth)
        if who is None:
            return None
        if min_seq is not None and (
            not min_seq.isdigit() or len(min_seq) > 18 or int(min_seq) > feed.latest
        ):
            return None
        name, at, ref = scope["path"][len(RESOLVE_PATH) :].rpartition("@")
        if not at or not name or not ref or "/" in ref or not may_read(who, name):
            return None  # out of the token's scopes: the app answers its 404
        return cache.resolved(name, ref)


class WriteMarks:
    """Plain ASGI around the app, for writes: collects the events the request appended,
    forgets their models in this process's cache before the reply starts, and gives a
    successful reply ``X-Modelreg-Seq`` (the newest sequence number it wrote)."""

    def __init__(self, app: Any, cache: ReadCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        appended: list[tuple[int, str]] = []
        reset = APPENDED.set(appended)

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start" and appended:
                self.cache.forget_models({model for _seq, model in appended})
                if message["status"] < 400:
                    newest = str(max(seq for seq, _model in appended)).encode()
                    headers = [*message.get("headers", ()), (SEQ_HEADER.encode(), newest)]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, marked)
        finally:
            APPENDED.reset(reset)
