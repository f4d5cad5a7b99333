"""Webhooks end to end: a real ``modelreg server`` process delivers events of its log
to a real receiver (an ``http.server`` in the test), signed, in order, once per event
id, through a receiver outage; filters, replays, the deliveries listing, and the
admin-only routes. Backoff is capped at a fraction of a second to keep this fast."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from release_facts import release
from webhook_receiver import Receiver, wait_until

from registry.auth import Role
from registry.cli.main import cli
from registry.models import ArtifactRef, Event, VersionCreate
from registry.store.base import RegistryStore
from registry.store.http import HttpStore
from registry.store.sql import SqlStore
from registry.webhooks import event_type, verify

from .conftest import Served, ServerProcess

MAX_BACKOFF_S = 0.3
FOUR_TYPES = ("registered", "promoted", "rolled_back", "refused")


def _start(url: str, log: Path, *, workers: int = 1) -> Served:
    with SqlStore(url, actor="test-admin") as store:
        _made, admin = store.create_token(f"admin-{uuid.uuid4().hex[:6]}", Role.ADMIN)
    args = ["--webhook-max-backoff", str(MAX_BACKOFF_S)]
    server = ServerProcess(url, log, workers=workers, args=args)
    try:
        server.start()
    except RuntimeError:
        server.kill()  # not ready in time: leave no process behind
        raise
    return Served(server, url, admin, {"admin": admin})


@pytest.fixture(scope="module")
def hooked(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server per module and backend; each test uses model names of its own."""
    served = _start(module_store_url, tmp_path_factory.mktemp("hooked") / "server.log")
    yield served
    served.server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    up = Receiver().up()
    yield up
    up.down()


def _subscribe(
    served: Served, url: str, events: tuple[str, ...], model: str | None
) -> tuple[int, str]:
    with served.client() as http:
        answer = http.post("/webhooks", json={"url": url, "events": list(events), "model": model})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    return int(made["webhook"]["id"]), str(made["secret"])


def _deliveries(served: Served, webhook_id: int) -> list[dict[str, Any]]:
    with served.client() as http:
        answer = http.get(f"/webhooks/{webhook_id}/deliveries", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def _register(store: RegistryStore, name: str, count: int = 1) -> list[int]:
    versions = []
    for _ in range(count):
        data = uuid.uuid4().bytes
        digest = hashlib.sha256(data).hexdigest()
        artifact = ArtifactRef(uri=f"file:///artifacts/{digest}", sha256=digest, size=len(data))
        versions.append(store.register(name, artifact, VersionCreate()).version)
    return versions


def _wanted(store: RegistryStore, after: int, types: tuple[str, ...], prefix: str) -> list[Event]:
    return [
        e
        for e in store.events(since=after, limit=10_000)
        if e.model.startswith(prefix) and ("*" in types or event_type(e) in types)
    ]


def _all_delivered(served: Served, webhook_id: int, count: int) -> list[dict[str, Any]]:
    return wait_until(
        lambda: _deliveries(served, webhook_id),
        lambda rows: len(rows) >= count and all(r["status"] == "delivered" for r in rows),
    )


# ---------------------------------------------------------------- what arrives


def test_registered_promoted_rolled_back_and_refused_events_arrive_signed_in_order(
    hooked: Served, receiver: Receiver
) -> None:
    name = "signed/fraud"
    hook, secret = _subscribe(hooked, receiver.url(), FOUR_TYPES, name)
    with hooked.db() as db:
        start = db.latest_seq()
    deployer = hooked.token(f"ci-{uuid.uuid4().hex[:6]}", Role.DEPLOYER)
    with HttpStore(hooked.url, token=deployer) as api:  # the changes come through the API
        _register(api, name, 2)
        release(api, name, 1)
        release(api, name, 2)
        api.rollback(name, reason="canary regressed in production")
        api.record_refusal(name, 2, ["auc 0.81 < 0.85"], gate="promotion")
        expected = _wanted(api, start, FOUR_TYPES, name)

    got = receiver.wait_for(len(expected))

    assert {event_type(e) for e in expected} == set(FOUR_TYPES)
    assert [r.event_id for r in got] == [e.seq for e in expected]
    assert [r.event_type for r in got] == [event_type(e) for e in expected]
    assert [r.event for r in got] == expected
    assert all(r.signed_by(secret) for r in got)
    assert all(r.headers["content-type"] == "application/json" for r in got)
    first = got[0]
    timestamp = int(first.headers["x-modelreg-timestamp"])
    signature = first.headers["x-modelreg-signature"]
    assert not verify("whsec_another-secret", timestamp, first.body, signature)
    assert not verify(secret, timestamp, first.body + b" ", signature)
    assert not verify(secret, timestamp + 1, first.body, signature)
    rows = _all_delivered(hooked, hook, len(expected))
    assert [(r["seq"], r["attempts"], r["last_status"]) for r in rows] == [
        (e.seq, 1, 204) for e in expected
    ]


def test_a_receiver_that_was_down_gets_every_event_once_in_order_per_model(
    hooked: Served,
) -> None:
    receiver = Receiver()  # not listening yet: its port is closed
    hook, secret = _subscribe(hooked, receiver.url(), ("*",), "outage/*")
    with hooked.db() as db:
        start = db.latest_seq()
        for _ in range(3):
            _register(db, "outage/fraud")
            _register(db, "outage/churn")
        expected = _wanted(db, start, ("*",), "outage/")

    failing = wait_until(
        lambda: _deliveries(hooked, hook),
        lambda rows: len(rows) == len(expected) and rows[0]["attempts"] >= 3,
    )
    assert failing[0]["attempts"] >= 3  # retried while it was down
    assert failing[0]["status"] == "pending"
    assert "Connect" in failing[0]["last_error"]
    assert all(r["attempts"] == 0 for r in failing[1:])  # nothing later went first

    receiver.up()
    try:
        receiver.wait_for(len(expected))
        rows = _all_delivered(hooked, hook, len(expected))
    finally:
        receiver.down()

    ids = [r.event_id for r in receiver.requests]
    assert ids == [e.seq for e in expected]  # each event once, in the log's order
    for model in ("outage/fraud", "outage/churn"):
        per_model = [r.event.seq for r in receiver.requests if r.event.model == model]
        assert per_model == sorted(per_model) and len(per_model) == 4  # created + 3
    assert all(r.signed_by(secret) for r in receiver.requests)
    assert rows[0]["attempts"] >= 4 and all(r["attempts"] == 1 for r in rows[1:])


def test_failed_attempts_are_retried_and_the_deliveries_show_why(
    hooked: Served, receiver: Receiver
) -> None:
    receiver.fail_next(2, status=503)
    hook, _secret = _subscribe(hooked, receiver.url(), ("registered",), "retried/fraud")
    with hooked.db() as db:
        _register(db, "retried/fraud")

    got = receiver.wait_for(1)
    rows = _all_delivered(hooked, hook, 1)

    assert [r.answered for r in receiver.requests] == [503, 503, 204]
    assert len({r.event_id for r in receiver.requests}) == 1
    assert [r.event_type for r in got] == ["registered"]
    assert (rows[0]["attempts"], rows[0]["last_status"], rows[0]["last_error"]) == (3, 204, None)


def test_the_model_filter_and_the_namespace_filter_pick_their_events(
    hooked: Served, receiver: Receiver
) -> None:
    one, _ = _subscribe(hooked, receiver.url("/one"), ("registered",), "filters/fraud")
    team, _ = _subscribe(hooked, receiver.url("/team"), ("registered",), "filters/*")
    promotions, _ = _subscribe(hooked, receiver.url("/promoted"), ("promoted",), "filters/*")
    with hooked.db() as db:
        start = db.latest_seq()
        _register(db, "filters/fraud", 2)
        _register(db, "filters/churn")
        _register(db, "filtersx/fraud")  # a namespace that only starts the same
        _register(db, "filters-other")
        release(db, "filters/churn", 1)
        latest = db.latest_seq()
        registered = _wanted(db, start, ("registered",), "filters/")
        promoted = _wanted(db, start, ("promoted",), "filters/")
    for hook in (one, team, promotions):  # every webhook has looked at every event
        wait_until(lambda h=hook: _webhook(hooked, h)["cursor"], lambda c: c >= latest)
    _all_delivered(hooked, one, 2)
    _all_delivered(hooked, team, 3)
    _all_delivered(hooked, promotions, 1)

    def seen(path: str) -> list[tuple[str, int]]:
        return [(r.event.model, r.event_id) for r in receiver.delivered(path)]

    assert seen("/one") == [(e.model, e.seq) for e in registered if e.model == "filters/fraud"]
    assert seen("/team") == [(e.model, e.seq) for e in registered]
    assert seen("/promoted") == [(e.model, e.seq) for e in promoted]
    assert len(promoted) == 1


def _webhook(served: Served, webhook_id: int) -> dict[str, Any]:
    with served.client() as http:
        listed = http.get("/webhooks").json()
    return next(w for w in listed if w["id"] == webhook_id)


def test_a_replay_from_a_seq_delivers_those_events_again(
    hooked: Served, receiver: Receiver
) -> None:
    hook, secret = _subscribe(hooked, receiver.url(), ("registered",), "replayed/fraud")
    with hooked.db() as db:
        _register(db, "replayed/fraud", 3)
    first = [r.event_id for r in receiver.wait_for(3)]
    _all_delivered(hooked, hook, 3)

    with hooked.client() as http:
        answer = http.post(f"/webhooks/{hook}/replay", json={"from_seq": first[1]})
    again = receiver.wait_for(5)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"queued": 2}
    assert [r.event_id for r in again] == first + first[1:]
    assert all(r.signed_by(secret) for r in again)
    rows = _all_delivered(hooked, hook, 3)
    assert [r["attempts"] for r in rows] == [1, 1, 1]


def test_a_removed_webhook_gets_nothing_more(hooked: Served, receiver: Receiver) -> None:
    hook, _ = _subscribe(hooked, receiver.url(), ("registered",), "removed/fraud")
    with hooked.db() as db:
        _register(db, "removed/fraud")
    receiver.wait_for(1)
    with hooked.client() as http:
        removed = http.delete(f"/webhooks/{hook}")
        listed = http.get("/webhooks").json()
    # A second webhook on the same model, added after the removal, shows when the
    # dispatcher has gone past the next event.
    witness, _ = _subscribe(hooked, receiver.url("/witness"), ("registered",), "removed/fraud")
    with hooked.db() as db:
        _register(db, "removed/fraud")
    receiver.wait_for(1, "/witness")

    assert removed.status_code == 200 and removed.json()["removed_at"] is not None
    assert hook not in {w["id"] for w in listed}
    assert len(receiver.delivered("/hook")) == 1
    assert witness != hook


# ---------------------------------------------------------------- the CLI


def _cli(served: Served, tmp_path: Path, registry: str, *args: str) -> Any:
    runner = CliRunner(
        env={
            "MODELREG_HOME": str(tmp_path / "home"),
            "MODELREG_TOKEN": served.admin,
            "MODELREG_USER": "oncall@test",
        }
    )
    result = runner.invoke(cli, ["--registry", registry, "webhook", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("door", ["server", "database"])
def test_the_cli_adds_lists_and_shows_deliveries(
    hooked: Served, receiver: Receiver, tmp_path: Path, door: str
) -> None:
    registry = hooked.url if door == "server" else hooked.db_url
    name = f"cli-{door}/fraud"
    made = _cli(
        hooked,
        tmp_path,
        registry,
        "add",
        receiver.url(),
        "--events",
        "registered,promoted",
        "--model",
        name,
    )
    hook = made["webhook"]["id"]
    with hooked.db() as db:
        _register(db, name, 2)
    receiver.wait_for(2)
    _all_delivered(hooked, hook, 2)

    listed = _cli(hooked, tmp_path, registry, "list")
    shown = _cli(hooked, tmp_path, registry, "deliveries", str(hook))
    replayed = _cli(hooked, tmp_path, registry, "replay", str(hook), "--from", str(shown[1]["seq"]))
    receiver.wait_for(3)
    removed = _cli(hooked, tmp_path, registry, "remove", str(hook))

    assert made["webhook"]["model"] == name and made["secret"].startswith("whsec_")
    assert {"id": hook, "events": ["registered", "promoted"]}.items() <= next(
        w for w in listed if w["id"] == hook
    ).items()
    assert [(d["event_type"], d["status"], d["attempts"]) for d in shown] == [
        ("registered", "delivered", 1),
        ("registered", "delivered", 1),
    ]
    assert replayed["queued"] == 1
    assert removed["removed_at"] is not None
    assert all(r.signed_by(made["secret"]) for r in receiver.requests)


def test_the_cli_with_a_non_admin_token_fails_in_one_line(hooked: Served, tmp_path: Path) -> None:
    reader = hooked.token(f"reader-{uuid.uuid4().hex[:6]}", Role.READER)
    runner = CliRunner(env={"MODELREG_HOME": str(tmp_path / "home"), "MODELREG_TOKEN": reader})

    result = runner.invoke(cli, ["--registry", hooked.url, "webhook", "list"])

    assert result.exit_code == 6, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "admin" in line


# ---------------------------------------------------------------- two server processes


@pytest.mark.postgres
def test_two_server_processes_deliver_each_event_once_in_order(
    tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver
) -> None:
    """Two workers share one PostgreSQL database (the set-up for several servers; on
    SQLite one server per file is the rule): the lease keeps one of them per webhook."""
    database = request.getfixturevalue("postgres_database")
    url = database.create_schema("two_workers")
    request.addfinalizer(lambda: database.drop_schema(url))
    served = _start(url, tmp_path / "server.log", workers=2)
    try:
        hook, _ = _subscribe(served, receiver.url(), ("*",), None)
        with served.db() as db:
            start = db.latest_seq()
            for _ in range(5):
                _register(db, "pair/fraud")
                _register(db, "pair/churn")
            expected = _wanted(db, start, ("*",), "")
        receiver.wait_for(len(expected))
        _all_delivered(served, hook, len(expected))
    finally:
        served.server.stop()

    assert [r.event_id for r in receiver.requests] == [e.seq for e in expected]
    with SqlStore(url, actor="test") as db:
        assert [owner for _id, owner, _until in db.webhook_leases()] == [None]  # released


# ---------------------------------------------------------------- the routes


def test_only_admins_manage_webhooks(hooked: Served) -> None:
    hook, _ = _subscribe(hooked, "https://hooks.example/a", ("promoted",), "guarded/fraud")
    calls = [
        ("POST", "/webhooks", {"url": "https://hooks.example/b", "events": ["promoted"]}),
        ("GET", "/webhooks", None),
        ("DELETE", f"/webhooks/{hook}", None),
        ("GET", f"/webhooks/{hook}/deliveries", None),
        ("POST", f"/webhooks/{hook}/replay", {"from_seq": 0}),
    ]
    deployer = hooked.token(f"deployer-{uuid.uuid4().hex[:6]}", Role.DEPLOYER)
    with hooked.client(deployer) as http, httpx.Client(base_url=f"{hooked.url}/api/v1") as anon:
        refused = [http.request(m, p, json=b).status_code for m, p, b in calls]
        unknown = [anon.request(m, p, json=b).status_code for m, p, b in calls]
        codes = {http.request(m, p, json=b).json()["error"]["code"] for m, p, b in calls}

    assert refused == [403] * len(calls)
    assert unknown == [401] * len(calls)
    assert codes == {"forbidden"}
    with hooked.client() as http:
        listed = http.get("/webhooks").json()
    assert hook in {w["id"] for w in listed}  # the refused DELETE removed nothing
    assert not [w for w in listed if w["url"].endswith("/b")]  # nor did the POST add one


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/webhooks", {"url": "ftp://x", "events": ["promoted"]}, 400, "invalid_input"),
        ("POST", "/webhooks", {"url": "http://h/\u0000", "events": ["*"]}, 400, "invalid_input"),
        (
            "POST",
            "/webhooks",
            {"url": "https://h.example", "events": ["nope"]},
            400,
            "invalid_input",
        ),
        ("POST", "/webhooks", {"url": "https://h.example", "events": []}, 400, "invalid_input"),
        (
            "POST",
            "/webhooks",
            {"url": "https://h.example", "events": ["*"], "model": "Bad Name"},
            400,
            "invalid_input",
        ),
        ("POST", "/webhooks", {"url": "https://h.example"}, 422, "invalid_request"),
        (
            "POST",
            "/webhooks",
            {"url": "https://h.example", "events": ["*"], "secret": "mine"},
            422,
            "invalid_request",
        ),
        ("POST", "/webhooks", {"url": 7, "events": "promoted"}, 422, "invalid_request"),
        ("DELETE", "/webhooks/999999", None, 404, "not_found"),
        ("DELETE", "/webhooks/0", None, 400, "invalid_input"),
        ("DELETE", "/webhooks/99999999999999999999999", None, 400, "invalid_input"),
        ("GET", "/webhooks/abc/deliveries", None, 422, "invalid_request"),
        ("GET", "/webhooks/999999/deliveries", None, 404, "not_found"),
        ("POST", "/webhooks/999999/replay", {"from_seq": 1}, 404, "not_found"),
        ("POST", "/webhooks/1/replay", {}, 422, "invalid_request"),
    ],
)
def test_bad_webhook_requests_get_a_json_error(
    hooked: Served, method: str, path: str, body: Any, status: int, code: str
) -> None:
    with hooked.client() as http:
        answer = http.request(method, path, json=body)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_bad_deliveries_query_and_a_removed_replay_are_refused(hooked: Served) -> None:
    hook, _ = _subscribe(hooked, "https://hooks.example/q", ("promoted",), "queried/fraud")
    with hooked.client() as http:
        limit = http.get(f"/webhooks/{hook}/deliveries", params={"limit": 0})
        since = http.get(f"/webhooks/{hook}/deliveries", params={"since": -1})
        http.delete(f"/webhooks/{hook}")
        replay = http.post(f"/webhooks/{hook}/replay", json={"from_seq": 0})

    assert (limit.status_code, since.status_code, replay.status_code) == (400, 400, 409)
    assert replay.json()["error"]["code"] == "conflict"
