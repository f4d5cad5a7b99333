"""The server's read cache (``registry.server.reads``) against real server processes.

A resolve may be answered from the process's memory. These tests pin what that may
and may not cost: a client always reads its own writes, no answer is older than an
event the client names (``X-Modelreg-Min-Seq``, which ``HttpStore`` sends), a change
made straight in the database is seen at the feed follower's next read, and no
token the database does not vouch for is ever answered from memory.

The servers here poll the log every 10 s (``--feed-poll 10``), so on SQLite anything
fresh that a test sees within that time came from the write's own invalidation, the
client's sequence number or the database, never from a lucky poll. On PostgreSQL the
follower is also woken by every change's NOTIFY, which is what its tests check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.auth import Principal, Role
from registry.models import ArtifactRef, VersionCreate
from registry.server.reads import ReadCache, resolved_body
from registry.store.http import HttpStore
from registry.store.sql import SqlStore

from .conftest import Served, ServerProcess, _registry_url

SLOW_POLL = "10"


@pytest.fixture
def slow(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """A one-worker server whose feed follower polls the log only every 10 s."""
    for url in _registry_url(backend, tmp_path, request):
        with SqlStore(url, actor="test-admin") as store:
            _made, admin = store.create_token("admin", Role.ADMIN)
        server = ServerProcess(url, tmp_path / "server.log", args=["--feed-poll", SLOW_POLL])
        server.start()
        try:
            yield Served(server, url, admin, {"admin": admin})
        finally:
            server.stop()


def _model_with_versions(db: SqlStore, count: int = 3) -> str:
    name = f"cache/{uuid.uuid4().hex[:10]}"
    db.create_model(name)
    for i in range(count):
        digest = uuid.uuid4().hex * 2
        ref = ArtifactRef(uri=f"file:///a/{digest}", sha256=digest, size=1 + i)
        db.register(name, ref, VersionCreate(metrics={"auc": 0.8}))
    return name


def _resolve(client: httpx.Client, name: str, ref: str, **headers: str) -> int:
    response = client.get(f"/resolve/{name}@{ref}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.content == resolved_body(name, response.json()["version"])
    return int(response.json()["version"])


def _wait_for(check: object, seconds: float) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - start < seconds, f"not within {seconds}s"
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_client_reads_its_own_alias_move_at_once(slow: Served) -> None:
    with slow.db("setup") as db:
        name = _model_with_versions(db)
        db.set_aliases(name, {"candidate": 1})
    with slow.client() as client:
        # the follower has not polled since the alias was set: wait out its first read
        _wait_for(lambda: client.get(f"/resolve/{name}@candidate").status_code == 200, 15)
        assert _resolve(client, name, "candidate") == 1
        assert _resolve(client, name, "candidate") == 1  # now from memory
        for version in (2, 3, 1, 2):
            moved = client.patch(
                f"/aliases/{name}", json={"moves": {"candidate": version}, "reason": "t"}
            )
            assert moved.status_code == 200, moved.text
            assert _resolve(client, name, "candidate") == version


def test_a_write_reply_names_the_sequence_number_it_wrote(slow: Served) -> None:
    with slow.db("setup") as db:
        name = _model_with_versions(db, 2)
    with slow.client() as client, slow.db() as db:
        moved = client.patch(f"/aliases/{name}", json={"moves": {"candidate": 2}, "reason": "t"})
        assert moved.status_code == 200
        assert int(moved.headers["x-modelreg-seq"]) == db.latest_seq()
        assert db.events(since=db.latest_seq() - 1)[-1].kind == "alias"
        refused = client.patch(f"/aliases/{name}", json={"moves": {"candidate": 99}})
        assert refused.status_code in (404, 422)
        assert "x-modelreg-seq" not in refused.headers
        assert client.get(f"/resolve/{name}@candidate").headers.get("x-modelreg-seq") is None


def test_a_change_made_in_the_database_is_seen_when_the_follower_or_the_client_knows(
    slow: Served,
) -> None:
    """A change the CLI makes straight in the database. SQLite: it is not answered from
    memory until the follower's next poll (10 s off here), but a client that names the
    change's sequence number, as HttpStore does once it has seen it, gets the
    database's answer at once. PostgreSQL: the change's NOTIFY wakes the follower, so
    memory forgets the old answer at once even for a client that names nothing."""
    with slow.db("setup") as db:
        name = _model_with_versions(db)
        db.set_aliases(name, {"candidate": 1})
    with slow.client() as client, slow.db("cli") as db:
        _wait_for(lambda: client.get(f"/resolve/{name}@candidate").status_code == 200, 15)
        assert _resolve(client, name, "candidate") == 1
        db.set_aliases(name, {"candidate": 3})
        seq = db.latest_seq()
        if slow.db_url.startswith("postgresql"):
            assert _wait_for(lambda: _resolve(client, name, "candidate") == 3, 5) < 5
            return
        assert _resolve(client, name, "candidate") == 1  # from memory: the poll is 10 s off
        assert _resolve(client, name, "candidate", **{"X-Modelreg-Min-Seq": "0"}) == 1
        assert _resolve(client, name, "candidate", **{"X-Modelreg-Min-Seq": str(seq)}) == 3
        assert _resolve(client, name, "candidate") == 3  # the database's answer, kept
        db.set_aliases(name, {"candidate": 2})
        assert _resolve(client, name, "candidate") == 3  # stale again, until…
        with HttpStore(slow.url, token=slow.admin) as remote:
            assert remote.latest_seq() == db.latest_seq()  # …the client has seen the change
            assert remote.resolve(name, "candidate") == 2
        db.set_aliases(name, {"candidate": 1})
        assert client.get(f"/resolve/{name}@candidate?x=1").json()["version"] == 1  # app


def test_the_min_seq_header_is_checked_by_the_route_when_memory_cannot_answer(
    slow: Served,
) -> None:
    with slow.db("setup") as db:
        name = _model_with_versions(db, 1)
    with slow.client() as client:
        for bad in ("-1", "x", "1" * 30, "1.5"):
            response = client.get(f"/resolve/{name}@1", headers={"X-Modelreg-Min-Seq": bad})
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["error"]["code"] == "invalid_request"


def test_only_a_token_the_database_vouched_for_is_answered_from_memory(slow: Served) -> None:
    with slow.db("setup") as db:
        name = _model_with_versions(db, 1)
        _made, reader = db.create_token("cache-reader", Role.READER)
    with slow.client(reader) as client:
        _wait_for(lambda: client.get(f"/resolve/{name}@1").status_code == 200, 15)
        assert _resolve(client, name, "1") == 1  # cached, for this token
    for header in ("Bearer mrt_" + "A" * 43, "Bearer " + reader[:-1], reader, ""):
        response = httpx.get(
            f"{slow.url}/api/v1/resolve/{name}@1", headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "unauthenticated"
    response = httpx.get(f"{slow.url}/api/v1/resolve/{name}@1")
    assert response.status_code == 401


def test_a_token_revoked_through_the_server_reads_nothing_more_from_it(slow: Served) -> None:
    with slow.db("setup") as db:
        name = _model_with_versions(db, 1)
        _made, reader = db.create_token("soon-revoked", Role.READER)
    with slow.client(reader) as client, slow.client() as admin:
        _wait_for(lambda: client.get(f"/resolve/{name}@1").status_code == 200, 15)
        assert _resolve(client, name, "1") == 1
        assert admin.delete("/tokens/soon-revoked").status_code == 200
        response = client.get(f"/resolve/{name}@1")
        assert response.status_code == 401, response.text
        assert "revoked" in response.json()["error"]["message"]


def test_a_deleted_version_or_moved_stage_is_not_answered_from_memory(slow: Served) -> None:
    """Every kind of change through the server forgets the model: a stage move too."""
    with slow.db("setup") as db:
        name = _model_with_versions(db, 2)
    with slow.client() as client:
        _wait_for(lambda: client.get(f"/resolve/{name}@latest").status_code == 200, 15)
        assert _resolve(client, name, "latest") == 2
        body = {"artifact": _artifact_json(), "meta": {"metrics": {"auc": 0.9}}}
        made = client.post(f"/versions/{name}", json=body)
        assert made.status_code == 201, made.text
        assert _resolve(client, name, "latest") == 3
        assert client.get(f"/resolve/{name}@staging").status_code == 404
        staged = client.put(f"/stage/{name}@3", json={"stage": "Staging"})
        assert staged.status_code == 200, staged.text
        assert _resolve(client, name, "staging") == 3


def _artifact_json() -> dict[str, object]:
    digest = uuid.uuid4().hex * 2
    return {"uri": f"file:///a/{digest}", "sha256": digest, "size": 7}


# ---------------------------------------------------------------- the cache alone


WHO = Principal("reader", Role.READER)


def test_a_fill_that_began_before_a_forget_is_dropped() -> None:
    cache = ReadCache()
    tick = cache.clock()
    cache.forget_models({"m"})  # an event arrived while the route read the database
    cache.remember_resolve("m", "production", b"old", tick)
    assert cache.resolved("m", "production") is None
    cache.remember_resolve("m", "production", b"new", cache.clock())
    assert cache.resolved("m", "production") == b"new"
    cache.remember_resolve("other", "1", b"x", tick)  # another model's forget: no matter
    assert cache.resolved("other", "1") == b"x"
    cache.forget_everything()
    assert cache.resolved("m", "production") is None
    cache.remember_resolve("other", "1", b"x", tick)
    assert cache.resolved("other", "1") is None


def test_a_token_verified_before_a_revocation_was_seen_is_not_remembered() -> None:
    cache = ReadCache()
    tick = cache.token_clock()
    cache.forget_tokens()
    cache.remember_token("Bearer a", WHO, tick)
    assert cache.token("Bearer a") is None
    cache.remember_token("Bearer a", WHO, cache.token_clock())
    assert cache.token("Bearer a") == WHO
    cache.forget_tokens()
    assert cache.token("Bearer a") is None
