"""``HttpStore`` through outages: retries with one key, fast-failing reads, lost replies,
and every error reply mapped to the registry's error types.

``Stub`` is a real HTTP server on 127.0.0.1 (a thread of the test), standing where a
proxy or a server in trouble would: it answers from a script and records what it was
sent, or forwards to a real ``modelreg server`` and loses the first replies on the
way back (the change is made, the client never hears), as a dropped connection does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from release_facts import release

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
from registry.models import (
    ArtifactRef,
    Heartbeat,
    ModelVersion,
    Origin,
    RegisteredModel,
    Stage,
    VersionCreate,
)
from registry.store.http import HttpStore

from .conftest import Served, free_port
from .test_http_store import artifact, unique

TOKEN = "mrt_" + "a" * 43
NOW = datetime(2026, 11, 1, tzinfo=UTC)
MODEL = RegisteredModel(name="fraud", generation=0, latest_version=0, created_at=NOW)
VERSION = ModelVersion(
    name="fraud",
    version=1,
    stage=Stage.NONE,
    artifact=ArtifactRef(uri="file:///a", sha256="0" * 64, size=1),
    created_by="ci",
    created_at=NOW,
)


def error_body(code: str, message: str, **extra: Any) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, **extra}}).encode()


UNAVAILABLE = (503, error_body("unavailable", "registry database stayed locked for 5s"))


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stub:
    """Answers with ``replies`` in turn (the last one again once they run out), or
    forwards to ``upstream`` and drops the connection instead of the first ``lose``
    replies."""

    replies: list[tuple[int, bytes]] = field(default_factory=list)
    upstream: str | None = None
    lose: int = 0
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, request: Seen) -> tuple[int, bytes] | None:
        self.seen.append(request)
        if self.upstream is None:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        reply = httpx.request(
            request.method,
            self.upstream + request.path,
            headers=headers,
            content=request.body,
            timeout=30,
        )
        if self.lose > 0:
            self.lose -= 1
            return None
        return reply.status_code, reply.content


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(stub: Stub) -> Stub:
        class Handler(BaseHTTPRequestHandler):
            def handle_one_request(self) -> None:  # every method, one way
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline or not self.parse_request():
                    self.close_connection = True
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                found = stub.answer(Seen(self.command, self.path, dict(self.headers), body))
                if found is None:  # the reply is lost: the connection just closes
                    self.close_connection = True
                    return
                status, content = found
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                self.wfile.flush()

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        stub.port = server.server_address[1]
        # shutdown() waits for the loop's next poll: 0.5 s by default, at every teardown.
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- retries


def test_a_write_retries_through_503s_with_one_key_and_the_origin(serve: Any) -> None:
    stub = serve(Stub([UNAVAILABLE, UNAVAILABLE, (201, MODEL.model_dump_json().encode())]))
    origin = Origin(flow="retrain", run_id="r-1")

    with HttpStore(stub.url, token=TOKEN, origin=origin) as store:
        made = store.create_model("fraud")

    assert made == MODEL
    assert [s.method for s in stub.seen] == ["POST", "POST", "POST"]
    keys = {s.headers["Idempotency-Key"] for s in stub.seen}
    assert len(keys) == 1
    assert uuid.UUID(keys.pop())
    assert {s.headers["X-Modelreg-Origin"] for s in stub.seen} == {
        origin.model_dump_json(exclude_none=True)
    }
    assert {s.headers["Authorization"] for s in stub.seen} == {f"Bearer {TOKEN}"}


def test_each_write_has_a_key_of_its_own(serve: Any) -> None:
    stub = serve(Stub([(201, MODEL.model_dump_json().encode())]))

    with HttpStore(stub.url, token=TOKEN) as store:
        store.create_model("fraud")
        store.create_model("fraud")

    assert len({s.headers["Idempotency-Key"] for s in stub.seen}) == 2


def test_a_read_retries_once_then_says_the_server_is_unavailable(serve: Any) -> None:
    stub = serve(Stub([UNAVAILABLE]))

    with (
        HttpStore(stub.url, token=TOKEN) as store,
        pytest.raises(RegistryUnavailable, match=f"registry server {stub.url} is unavailable"),
    ):
        store.list_models()

    assert [s.method for s in stub.seen] == ["GET", "GET"]
    assert all("Idempotency-Key" not in s.headers for s in stub.seen)


def test_a_write_gives_up_when_its_budget_is_spent(serve: Any) -> None:
    stub = serve(Stub([UNAVAILABLE]))

    with (
        HttpStore(stub.url, token=TOKEN, write_budget_s=0.5) as store,
        pytest.raises(RegistryUnavailable, match="locked"),
    ):
        store.create_model("fraud")

    assert len(stub.seen) >= 2
    assert len({s.headers["Idempotency-Key"] for s in stub.seen}) == 1


@pytest.mark.parametrize(
    ("code", "kind"), [("storage_error", StorageError), ("artifact_error", ArtifactError)]
)
def test_a_503_that_a_retry_will_not_fix_is_not_retried(
    serve: Any, code: str, kind: type[Exception]
) -> None:
    stub = serve(Stub([(503, error_body(code, "disk full"))]))

    with HttpStore(stub.url, token=TOKEN) as store, pytest.raises(kind, match="disk full"):
        store.create_model("fraud")

    assert len(stub.seen) == 1


def test_a_registration_carries_one_key_in_its_metadata(serve: Any) -> None:
    stub = serve(Stub([UNAVAILABLE, (201, VERSION.model_dump_json().encode())]))

    with HttpStore(stub.url, token=TOKEN) as store:
        store.register("fraud", VERSION.artifact, VersionCreate())

    keys = {s.json()["meta"]["idempotency_key"] for s in stub.seen}
    assert len(stub.seen) == 2
    assert len(keys) == 1
    assert keys.pop()
    assert all("Idempotency-Key" not in s.headers for s in stub.seen)


def test_a_registration_keeps_the_callers_key(serve: Any) -> None:
    stub = serve(Stub([(201, VERSION.model_dump_json().encode())]))

    with HttpStore(stub.url, token=TOKEN) as store:
        store.register("fraud", VERSION.artifact, VersionCreate(idempotency_key="run-7"))

    assert stub.seen[0].json()["meta"]["idempotency_key"] == "run-7"


def test_a_heartbeat_is_sent_without_a_key_and_without_a_long_retry(serve: Any) -> None:
    stub = serve(Stub([UNAVAILABLE]))
    beat = Heartbeat(
        resolver_id="r-1",
        model="fraud",
        ref="fraud@production",
        region="us-east",
        host="web-1",
        pid=1,
        seq=0,
        started_at=NOW,
        seen_at=NOW,
    )

    with HttpStore(stub.url, token=TOKEN) as store, pytest.raises(RegistryUnavailable):
        store.heartbeat(beat)

    assert all("Idempotency-Key" not in s.headers for s in stub.seen)
    assert len(stub.seen) <= 3  # the read budget, not the write budget


# ---------------------------------------------------------------- error replies as types


@pytest.mark.parametrize(
    ("status", "body", "kind", "text"),
    [
        (400, error_body("invalid_input", "invalid model name 'X'"), InvalidInput, "invalid model"),
        (401, error_body("unauthenticated", "no token: send it"), Unauthenticated, "no token"),
        (403, error_body("forbidden", "reader may not"), Forbidden, "reader may not"),
        (404, error_body("not_found", "model 'x' not found"), NotFound, "not found"),
        (405, error_body("method_not_allowed", "Method Not Allowed"), InvalidInput, "Method"),
        (409, error_body("conflict", "stale generation 3"), Conflict, "stale generation"),
        (413, error_body("too_large", "over the limit"), InvalidInput, "over the limit"),
        (415, error_body("unsupported_media_type", "JSON only"), InvalidInput, "JSON only"),
        (
            422,
            error_body("gate_refused", "refused: no canary", reasons=["no canary"]),
            GateRefused,
            "no canary",
        ),
        (422, error_body("check_failed", "health failed"), ReleaseCheckFailed, "health failed"),
        (422, error_body("invalid_request", "stage: bad"), InvalidInput, "stage: bad"),
        (500, error_body("internal", "internal error (KeyError)"), RegistryError, "KeyError"),
        (418, b"teapot", RegistryError, "HTTP 418"),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_error_replies_become_the_registrys_errors(
    serve: Any, status: int, body: bytes, kind: type[Exception], text: str
) -> None:
    stub = serve(Stub([(status, body)]))

    with HttpStore(stub.url, token=TOKEN) as store, pytest.raises(RegistryError) as caught:
        store.get_model("fraud")

    assert type(caught.value) is kind
    assert text in str(caught.value)
    if kind is GateRefused:
        assert caught.value.reasons == ("no canary",)  # type: ignore[attr-defined]
    assert len(stub.seen) == 1  # none of these is worth a retry


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_unavailable_after_a_retry(serve: Any, status: int) -> None:
    stub = serve(Stub([(status, b"<html>bad gateway</html>")]))

    with (
        HttpStore(stub.url, token=TOKEN) as store,
        pytest.raises(RegistryUnavailable, match=f"{stub.url} is unavailable: <html>bad gateway"),
    ):
        store.get_model("fraud")

    assert len(stub.seen) == 2


@pytest.mark.parametrize(
    "body", [b"not json", b'{"name": 3}', b"[]"], ids=["text", "shape", "list"]
)
def test_a_reply_of_the_wrong_shape_is_a_registry_error(serve: Any, body: bytes) -> None:
    stub = serve(Stub([(200, body)]))

    with HttpStore(stub.url, token=TOKEN) as store, pytest.raises(RegistryError) as caught:
        store.get_model("fraud")

    assert type(caught.value) is RegistryError
    assert "registry server" in str(caught.value)


def test_path_parts_are_escaped(serve: Any) -> None:
    stub = serve(Stub([(404, error_body("not_found", "no"))]))

    with HttpStore(stub.url, token=TOKEN) as store:
        for name in ("ns/a?b#c", ".."):
            with pytest.raises(NotFound):
                store.get_model(name)

    assert [s.path for s in stub.seen] == ["/api/v1/models/ns/a%3Fb%23c", "/api/v1/models/%2E%2E"]


# ---------------------------------------------------------------- outages of a real server


def test_a_read_of_a_dead_port_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with (
        HttpStore(url, token=TOKEN) as store,
        pytest.raises(RegistryUnavailable, match=f"registry server {url} is unreachable: Connect"),
    ):
        store.get_model("fraud")


def test_a_write_to_a_server_that_comes_up_a_moment_later_succeeds(served: Served) -> None:
    served.server.kill()
    name = unique()
    with HttpStore(served.url, token=served.admin, write_budget_s=60) as store:
        with pytest.raises(RegistryUnavailable):
            store.get_model(name)  # a read does not wait for it
        later = threading.Timer(0.5, served.server.start)
        later.start()
        try:
            made = store.create_model(name)
        finally:
            later.join()

        assert made.name == name
        assert store.get_model(name) == made
    with served.db() as db:
        assert [e.kind for e in db.history(name)] == ["model.created"]


def test_a_rollback_whose_reply_was_lost_rolls_back_once(module_served: Served, serve: Any) -> None:
    name = unique()
    with HttpStore(module_served.url, token=module_served.admin) as direct:
        for version in (1, 2, 3):
            direct.register(name, artifact(), VersionCreate())
            release(direct, name, version)
    proxy = serve(Stub(upstream=module_served.url, lose=1))

    with HttpStore(proxy.url, token=module_served.admin) as store:
        change = store.rollback(name, reason="3 is slow")

    assert len(proxy.seen) == 2  # the first was made and its reply lost; the retry replayed
    assert [e.kind for e in change.events] == ["rollback"]
    with module_served.db() as db:
        assert db.get_model(name).production == 2
        assert [e.kind for e in db.history(name)].count("rollback") == 1


def test_a_registration_whose_reply_was_lost_makes_one_version(
    module_served: Served, serve: Any
) -> None:
    name = unique()
    proxy = serve(Stub(upstream=module_served.url, lose=1))

    with HttpStore(proxy.url, token=module_served.admin) as store:
        registered = store.register(name, artifact(), VersionCreate())

    assert len(proxy.seen) == 2
    assert registered.version == 1
    with module_served.db() as db:
        assert [v.version for v in db.list_versions(name)] == [1]
        assert [e.kind for e in db.history(name)] == ["model.created", "version.registered"]


def test_a_read_whose_reply_was_lost_is_asked_again(module_served: Served, serve: Any) -> None:
    proxy = serve(Stub(upstream=module_served.url, lose=1))

    with HttpStore(proxy.url, token=module_served.admin) as store:
        assert store.actor == "admin"

    assert len(proxy.seen) == 2
