"""Idempotent writes: a retried request carrying the same ``Idempotency-Key`` gets the
reply the first attempt got, instead of making the change twice (a second rollback,
a second binding).

Plain ASGI around the app. For a write (POST, PUT, PATCH, DELETE) with the header, the
key is looked up under the caller's token (a hash of its ``Authorization`` header, so
two tokens never share keys): a kept reply to the same request (method, path, query and
body) is sent again as it was; one to a different request is refused with 422. Otherwise
the request runs and its reply is kept if it was not a 5xx (a server error may be
retried for real). A reply is kept after the change committed, so a server killed in
between replays nothing and the retry runs again; registrations do not rely on this:
their key travels in the metadata, where the store dedups in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import anyio.to_thread

from registry.server.errors import body as error_body
from registry.store.sql import SqlStore

Scope = dict[str, Any]
Message = dict[str, Any]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class IdempotentWrites:
    def __init__(self, app: Any, store: SqlStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        key = headers.get(b"idempotency-key", b"").decode("latin-1")
        if not key:
            await self.app(scope, receive, send)
            return
        if not KEY_RE.fullmatch(key):
            await _send(send, 400, error_body("invalid_input", "malformed Idempotency-Key"))
            return
        who = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()[:64]
        request_body = await _read(receive)
        fingerprint = hashlib.sha256(
            b"\0".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope["query_string"],
                    request_body,
                ]
            )
        ).hexdigest()
        kept = await anyio.to_thread.run_sync(self.store.saved_reply, who, key)
        if kept is not None:
            if kept[0] != fingerprint:
                await _send(
                    send,
                    422,
                    error_body(
                        "invalid_request",
                        f"Idempotency-Key {key!r} was used for a different request",
                    ),
                )
                return
            await _send_raw(send, kept[1], kept[2].encode(), replayed=True)
            return

        status = 0
        chunks: list[bytes] = []

        async def replay() -> Message:
            return {"type": "http.request", "body": request_body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if (
                    not message.get("more_body", False)
                    and status
                    and status < 500
                    and status != 401
                ):
                    # Kept before the reply's last bytes go out: a client that retries
                    # the moment it has the reply must find it kept.
                    await anyio.to_thread.run_sync(
                        self.store.save_reply,
                        who,
                        key,
                        fingerprint,
                        status,
                        b"".join(chunks).decode(),
                    )
            await send(message)

        await self.app(scope, replay, capture)


async def _read(receive: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _send(send: Any, status: int, payload: dict[str, Any]) -> None:
    await _send_raw(send, status, json.dumps(payload).encode())


async def _send_raw(send: Any, status: int, payload: bytes, *, replayed: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if replayed:
        headers.append((b"idempotent-replay", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
