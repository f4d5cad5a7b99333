"""Roles and grants over real HTTP against a real ``modelreg server``, on each backend.

The full role x operation matrix (``roles_world.WRITES`` and ``READS``): each allowed
call answers its 2xx as the token's name, each forbidden one is 403 and changes
nothing, as read straight from the database. Then the tokens themselves: revoked,
malformed and unknown ones are 401; scoped grants; conflicts, refusals and body
limits on the way through.

A refusal changes nothing (each case checks that), so the refusals share one world
per module; an allowed call gets a world of its own under a fresh prefix.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.auth import Role, new_secret
from registry.models import ArtifactRef, Stage
from registry.store.sql import SqlStore

from .conftest import Served, ServerProcess
from .roles_world import (
    ADMIN,
    BY_NAME,
    DEP,
    DS,
    ERASURE,
    READS,
    WRITES,
    Call,
    R,
    World,
    artifact,
    build_world,
    meta,
    observe,
)

ROLES = list(Role)
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def served(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``module_served`` with a small body limit, and without the webhook dispatcher:
    its attempts would change the delivery rows these tests compare."""
    with SqlStore(module_store_url, actor="test-admin") as store:
        _made, admin = store.create_token("admin", Role.ADMIN)
    log = tmp_path_factory.mktemp("server") / "server.log"
    args = ["--no-webhooks", "--max-body", str(MAX_BODY)]
    server = ServerProcess(module_store_url, log, args=args).start()
    try:
        yield Served(server, module_store_url, admin, {"admin": admin})
    finally:
        server.stop()


@pytest.fixture(scope="module")
def db(served: Served) -> Iterator[SqlStore]:
    """The server's database, read and set up directly (never through the server)."""
    with served.db("tester") as store:
        yield store


@pytest.fixture(scope="module")
def clients(served: Served, db: SqlStore) -> Iterator[dict[Role, httpx.Client]]:
    """One unscoped token per role, named ``as-<role>``."""
    made = {}
    for role in ROLES:
        _token, secret = db.create_token(f"as-{role}", role)
        made[role] = served.client(secret)
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def shared(db: SqlStore) -> World:
    return build_world(db, ERASURE)


@pytest.fixture
def world(db: SqlStore) -> World:
    return build_world(db)


def send(client: httpx.Client, call: Call, world: World, **kwargs: Any) -> httpx.Response:
    body = None if call.body is None else call.body(world)
    return client.request(call.method, world.format(call.path), json=body, **kwargs)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()["error"]
    assert found["code"] == code
    assert found["message"]
    return found


def assert_forbidden(db: SqlStore, client: httpx.Client, call: Call, world: World) -> None:
    before = observe(db, world)
    error(send(client, call, world), 403, "forbidden")
    assert observe(db, world) == before


def assert_done_as(
    db: SqlStore, client: httpx.Client, call: Call, world: World, actor: str
) -> None:
    before = observe(db, world)
    response = send(client, call, world)
    assert response.status_code == call.status, response.text
    after = observe(db, world)
    assert (after != before) is call.changes
    new_events = db.events(since=before["seq"])
    assert {e.actor for e in new_events} <= {actor}
    if call.changes and new_events:
        assert all(e.model.startswith(world.prefix) for e in new_events)


# ---------------------------------------------------------------- the matrix

BELOW = [(call, role) for call in WRITES for role in ROLES if role.rank < call.need.rank]
AT_OR_ABOVE = [(call, role) for call in WRITES for role in ROLES if role.rank >= call.need.rank]


@pytest.mark.parametrize(("call", "role"), BELOW, ids=str)
def test_a_role_below_the_need_is_403_and_changes_nothing(
    db: SqlStore, clients: dict[Role, httpx.Client], shared: World, call: Call, role: Role
) -> None:
    assert_forbidden(db, clients[role], call, shared)


@pytest.mark.parametrize(("call", "role"), AT_OR_ABOVE, ids=str)
def test_a_role_at_or_above_the_need_succeeds_as_the_token(
    db: SqlStore, clients: dict[Role, httpx.Client], call: Call, role: Role
) -> None:
    assert_done_as(db, clients[role], call, build_world(db, call.needs), f"as-{role}")


@pytest.mark.parametrize("call", READS, ids=str)
def test_every_role_reads(
    db: SqlStore, clients: dict[Role, httpx.Client], shared: World, call: Call
) -> None:
    before = observe(db, shared)
    replies = [send(clients[role], call, shared) for role in ROLES]
    assert [r.status_code for r in replies] == [200] * len(ROLES), [r.text for r in replies]
    if call.path not in ("/whoami", "/models", "/events/latest"):  # these differ per caller
        assert len({r.text for r in replies}) == 1  # or change as other tests write
    assert observe(db, shared) == before


def test_the_matrix_covers_every_write_route(served: Served) -> None:
    """A write route added to the API must get a row in ``WRITES``."""
    spec = httpx.get(f"{served.url}/api/v1/openapi.json").json()
    routes = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, methods in spec["paths"].items()
        for method in methods
        if method != "get"
    }
    covered = {
        (method, path)
        for method, path in routes
        for call in WRITES
        if method == call.method and _matches(path, call.path)
    }
    assert routes <= covered, routes - covered


def _matches(template: str, path: str) -> bool:
    """Whether an OpenAPI path template (``/stage/{name}@{version}``) covers one of
    ``WRITES``' paths (``/stage/{fraud}@4``): the same literal parts in order."""
    pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^?]+", re.escape(template))
    concrete = path.format(
        p="p",
        fraud="p/fraud",
        risk="p/risk",
        new="p/new",
        outside="o",
        app="a",
        victim="v",
        webhook=1,
        data="d",
        erasure=1,
    )
    return re.fullmatch(pattern, concrete) is not None


# ---------------------------------------------------------------- scoped grants

# (role, scopes, call, allowed); scopes are formatted with the case's names.
SCOPED = [
    (DEP, ("{p}/*",), "register", True),
    (DEP, ("{p}/*",), "to_production", True),
    (DEP, ("{p}/*",), "alias_policy_protected", True),
    (DEP, ("{p}/*",), "register_outside", False),
    (DEP, ("{p}/*",), "create_app_release", False),  # registry-wide: needs '*'
    (DEP, ("{p}/*",), "heartbeat", True),
    (ADMIN, ("{p}/*",), "set_policy", True),
    (ADMIN, ("{p}/*",), "create_token", False),
    (ADMIN, ("{p}/*",), "list_webhooks", True),  # its namespace's: {p}/fraud's
    (ADMIN, ("{p}/*",), "add_webhook", True),  # on {p}/fraud, inside the grant
    (DEP, ("{fraud}",), "bind_app_release", True),
    (DEP, ("{fraud}",), "alias_policy_protected", False),
    (DS, ("{fraud}@shadow",), "alias", True),
    (DS, ("{fraud}@shadow",), "alias_delete", False),  # moves canary too
    (DEP, ("{fraud}@shadow",), "alias_protected", False),
    (DEP, ("{fraud}@shadow",), "register", False),  # not a pointer move
    (DEP, ("{fraud}@shadow",), "to_production", False),
    (DEP, ("{fraud}@shadow", "{fraud}@canary"), "alias_delete", True),
    (DEP, ("{fraud}@production",), "to_production", True),
    (DEP, ("{fraud}@production",), "rollback", True),
    (DEP, ("{fraud}@production",), "to_archived", False),  # moves archived too
    (DEP, ("{fraud}@production",), "record_check", False),
    (DEP, ("{p}/*@staging",), "to_staging", True),
    (DEP, ("*@shadow",), "alias", True),
    (DEP, ("*@shadow",), "create_app_release", False),
    (ADMIN, ("{fraud}@shadow",), "alias_forced", True),
    (ADMIN, ("{fraud}@shadow",), "promote_forced", False),
]
_IDS = [f"{role}-{'+'.join(scopes)}-{name}" for role, scopes, name, _ in SCOPED]


def scoped_client(
    served: Served, db: SqlStore, world: World, role: Role, scopes: tuple[str, ...]
) -> tuple[str, httpx.Client]:
    name = f"{world.prefix}-{uuid.uuid4().hex[:6]}"
    _token, secret = db.create_token(name, role, scopes=[world.format(s) for s in scopes])
    return name, served.client(secret)


@pytest.mark.parametrize(
    ("role", "scopes", "call"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if ok],
    ids=[i for i, (*_, ok) in zip(_IDS, SCOPED, strict=True) if ok],
)
def test_a_scoped_grant_allows_what_it_covers(
    served: Served, db: SqlStore, role: Role, scopes: tuple[str, ...], call: Call
) -> None:
    world = build_world(db, call.needs)
    name, client = scoped_client(served, db, world, role, scopes)
    with client:
        assert_done_as(db, client, call, world, name)


@pytest.mark.parametrize(
    ("role", "scopes", "call"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if not ok],
    ids=[i for i, (*_, ok) in zip(_IDS, SCOPED, strict=True) if not ok],
)
def test_a_scoped_grant_refuses_what_it_does_not_cover(
    served: Served, db: SqlStore, shared: World, role: Role, scopes: tuple[str, ...], call: Call
) -> None:
    _name, client = scoped_client(served, db, shared, role, scopes)
    with client:
        found = error(send(client, call, shared), 403, "forbidden")
    assert "scoped to" in found["message"] or "outside its grant" in found["message"]


def test_whoami_shows_the_verified_grant(served: Served, db: SqlStore, world: World) -> None:
    name, client = scoped_client(served, db, world, DEP, ("{p}/*", "{outside}@shadow"))
    with client:
        found = client.get("/whoami").json()
    assert found == {
        "name": name,
        "role": "deployer",
        "scopes": [f"{world.prefix}/*", f"{world.outside}@shadow"],
    }


# ---------------------------------------------------------------- tokens


def test_a_token_revoked_over_http_is_401_from_the_next_request_on(
    served: Served, db: SqlStore, clients: dict[Role, httpx.Client], world: World
) -> None:
    name = f"{world.prefix}-leaving"
    _token, secret = db.create_token(name, DEP)
    with served.client(secret) as leaving:
        assert leaving.get("/whoami").json()["name"] == name
        revoked = clients[ADMIN].delete(f"/tokens/{name}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_by"] == "as-admin"

        found = error(leaving.get("/whoami"), 401, "unauthenticated")
        assert "revoked" in found["message"]
        error(
            leaving.put(f"/stage/{world.fraud}@4", json={"stage": "Staging"}),
            401,
            "unauthenticated",
        )
    assert db.get_version(world.fraud, 4).stage is Stage.NONE


def test_a_token_revoked_in_the_database_changes_nothing_at_once_and_reads_stop_soon(
    served: Served, db: SqlStore, world: World
) -> None:
    """``modelreg token revoke`` writes the database, not the server. The server
    remembers tokens it verified, but every write re-checks its token in its own
    transaction: refused at once. Reads stop at the feed follower's next poll."""
    name = f"{world.prefix}-cli-revoked"
    _token, secret = db.create_token(name, ADMIN)
    with served.client(secret) as client:
        assert client.get("/tokens").status_code == 200
        assert client.get(f"/resolve/{world.fraud}@1").status_code == 200  # remembered
        db.revoke_token(name)
        error(client.post("/models", json={"name": world.new}), 401, "unauthenticated")
        deadline = time.monotonic() + 5
        while (status := client.get(f"/resolve/{world.fraud}@1").status_code) == 200:
            assert time.monotonic() < deadline, "reads went on 5 s after the revocation"
            time.sleep(0.01)
        assert status == 401
        error(client.get("/tokens"), 401, "unauthenticated")
    assert observe(db, world)["models"][2] is None


SECRET = new_secret()
MALFORMED = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": ""}, id="empty"),
    pytest.param({"Authorization": SECRET}, id="no-scheme"),
    pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    pytest.param({"Authorization": f"Basic {SECRET}"}, id="basic"),
    pytest.param({"Authorization": f"Token {SECRET}"}, id="wrong-scheme"),
    pytest.param({"Authorization": f"Bearer{SECRET}"}, id="no-space"),
    pytest.param({"Authorization": f"Bearer {SECRET[4:]}"}, id="no-prefix"),
    pytest.param({"Authorization": f"Bearer xyz_{SECRET[4:]}"}, id="wrong-prefix"),
    pytest.param({"Authorization": f"Bearer {SECRET[:-1]}"}, id="short"),
    pytest.param({"Authorization": f"Bearer {SECRET}A"}, id="long"),
    pytest.param({"Authorization": f"Bearer {SECRET[:-1]}!"}, id="bad-alphabet"),
    pytest.param({"Authorization": "junk"}, id="junk"),
    pytest.param({b"Authorization": ("Bearer mrt_\u00e9" + "a" * 42).encode()}, id="non-ascii"),
    pytest.param({"Authorization": f"Bearer {SECRET}, Bearer {SECRET}"}, id="two"),
    pytest.param({"Authorization": new_secret()}, id="unknown-no-scheme"),
]


@pytest.mark.parametrize("headers", MALFORMED)
def test_malformed_authorization_is_401_and_changes_nothing(
    served: Served, db: SqlStore, shared: World, headers: Mapping[str, str] | Mapping[bytes, bytes]
) -> None:
    before = observe(db, shared)
    with httpx.Client(base_url=f"{served.url}/api/v1", headers=headers) as client:
        for method, path, body in (
            ("GET", "/whoami", None),
            ("GET", f"/models/{shared.fraud}", None),
            ("POST", "/models", {"name": shared.new}),
            ("PUT", f"/stage/{shared.fraud}@3", {"stage": "Production"}),
            ("DELETE", f"/tokens/{shared.victim}", None),
        ):
            response = client.request(method, path, json=body)
            error(response, 401, "unauthenticated")
    assert observe(db, shared) == before


def test_an_unknown_token_is_401(served: Served) -> None:
    with served.client(new_secret()) as stranger:
        found = error(stranger.get("/whoami"), 401, "unauthenticated")
        assert "unknown token" in found["message"]
        error(stranger.get("/models"), 401, "unauthenticated")


def test_the_scheme_is_case_insensitive(served: Served, db: SqlStore, world: World) -> None:
    name = f"{world.prefix}-lower"
    _token, secret = db.create_token(name, R)
    headers = {"Authorization": f"bearer {secret}"}
    with httpx.Client(base_url=f"{served.url}/api/v1", headers=headers) as client:
        assert client.get("/whoami").json()["name"] == name


def test_tokens_are_stored_as_hashes_only(served: Served, db: SqlStore, world: World) -> None:
    with served.client() as admin:
        made = admin.post("/tokens", json={"name": f"{world.prefix}-hashed", "role": "reader"})
        listed = admin.get("/tokens").text
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert "secret" not in made.json()["token"]
    engine = sa.create_engine(served.db_url)
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM api_token"))]
    finally:
        engine.dispose()
    assert rows
    assert not any(secret in str(v) for row in rows for v in row)
    assert any(hashlib.sha256(secret.encode()).hexdigest() in row for row in rows)
    assert secret not in listed


# ---------------------------------------------------------------- the actor


def test_the_event_log_records_the_tokens_name_not_a_claimed_one(
    served: Served, db: SqlStore, world: World
) -> None:
    name = f"{world.prefix}-release-bot"
    _token, secret = db.create_token(name, DEP)
    origin = {"flow": "release", "run_id": "run-7"}
    headers = {
        "X-Modelreg-Origin": json.dumps(origin),
        "X-Modelreg-Actor": "mallory",  # not a header the server reads
        "X-Forwarded-User": "mallory",
    }
    since = db.latest_seq()
    with served.client(secret) as bot:
        bot.headers.update(headers)
        registered = bot.post(f"/versions/{world.fraud}", json={"artifact": artifact()})
        assert registered.status_code == 201, registered.text
        assert registered.json()["created_by"] == name
        moved = bot.patch(f"/aliases/{world.fraud}", json={"moves": {"shadow": 5}})
        assert moved.status_code == 200, moved.text
        staged = bot.put(f"/stage/{world.fraud}@5", json={"stage": "Staging", "reason": "ok"})
        assert staged.status_code == 200, staged.text
        claimed = bot.post(
            f"/versions/{world.fraud}", json={"artifact": artifact(), "actor": "mallory"}
        )
        error(claimed, 422, "invalid_request")

    events = db.events(since=since)
    assert [e.kind for e in events] == ["version.registered", "alias", "stage"]
    assert {e.actor for e in events} == {name}
    assert all(e.details.origin is not None and e.details.origin.run_id == "run-7" for e in events)
    assert db.get_version(world.fraud, 5).created_by == name
    assert [v.version for v in db.list_versions(world.fraud)] == [5, 4, 3, 2, 1]


# ---------------------------------------------------------------- conflicts and refusals

STALE = [
    pytest.param("PUT", "/stage/{fraud}@3", {"stage": "Production"}, id="stage"),
    pytest.param("PATCH", "/aliases/{fraud}", {"moves": {"shadow": 4}}, id="aliases"),
    pytest.param("POST", "/rollback/{fraud}", {"reason": "bad"}, id="rollback"),
]


@pytest.mark.parametrize(("method", "path", "body"), STALE)
def test_a_stale_expected_generation_is_409_and_moves_nothing(
    db: SqlStore,
    clients: dict[Role, httpx.Client],
    world: World,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    current = db.get_model(world.fraud).generation
    before = observe(db, world)
    for stale in (current - 1, current + 1, 0):
        response = clients[DEP].request(
            method, world.format(path), json={**body, "expected_generation": stale}
        )
        found = error(response, 409, "conflict")
        assert "generation" in found["message"]
    assert observe(db, world) == before
    fresh = clients[DEP].request(
        method, world.format(path), json={**body, "expected_generation": current}
    )
    assert fresh.status_code == 200, fresh.text
    assert db.get_model(world.fraud).generation > current


def test_a_refused_promotion_is_422_with_reasons_and_a_refused_event(
    db: SqlStore, clients: dict[Role, httpx.Client], world: World
) -> None:
    """The default policy wants replicas, health and a canary: none were recorded."""
    name = f"{world.prefix}/strict"
    db.register(name, ArtifactRef.model_validate(artifact()), meta())
    db.transition(name, 1, Stage.STAGING)
    model_before = db.get_model(name)

    response = clients[DEP].put(f"/stage/{name}@1", json={"stage": "Production", "reason": "go"})

    found = error(response, 422, "gate_refused")
    assert found["reasons"] and all(isinstance(r, str) and r for r in found["reasons"])
    model_after = db.get_model(name)
    assert (model_after.production, model_after.staging) == (None, (1,))
    assert model_after.generation == model_before.generation
    refused = db.history(name)[-1]
    assert (refused.kind, refused.actor, refused.details.gate) == (
        "refused",
        "as-deployer",
        "promotion",
    )
    assert list(refused.details.reasons) == found["reasons"]


# ---------------------------------------------------------------- body limits


def test_a_body_over_max_body_is_413_and_stores_nothing(
    served: Served, db: SqlStore, clients: dict[Role, httpx.Client], world: World
) -> None:
    name = f"{world.prefix}/huge"
    big = {"artifact": artifact(), "meta": {"description": "x" * 4000, "tags": {}}}
    big["meta"]["tags"] = {f"t{i}": "y" * 1000 for i in range(MAX_BODY // 1000 + 1)}
    declared = clients[ADMIN].post(f"/versions/{name}", json=big)
    error(declared, 413, "too_large")

    payload = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(payload), 4096):
            yield payload[start : start + 4096]

    chunked = clients[ADMIN].post(
        f"/versions/{name}", content=chunks(), headers={"Content-Type": "application/json"}
    )
    error(chunked, 413, "too_large")
    assert name not in {m.name for m in db.list_models()}

    small = {"artifact": artifact()}
    assert clients[ADMIN].post(f"/versions/{name}", json=small).status_code == 201
