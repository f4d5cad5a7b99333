"""Scoped grants limit reads (#12 item 5), over real HTTP against a real server process.

One server per module and backend, with an artifact folder and a source root so the
MLflow door can store and serve real bundles. The registry holds two namespaces and a
top-level model: ``payments/fraud`` and ``payments/refunds``, ``risk/score``, and
``churn``. A ``payments/*`` reader must see only the payments models at every door (the
REST API, the cached resolve, the event feed, the MLflow API and its downloads, the
Python client, the CLI); a model of another namespace answers exactly as one that does
not exist. A ``*`` reader sees everything; a ``payments/fraud@champion`` token reads
all of ``payments/fraud`` and nothing else. Webhooks filtered to a namespace receive
only that namespace's events, and a scoped admin may subscribe only inside its grant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from webhook_receiver import Receiver, wait_until

from registry.auth import Role
from registry.cli.errors import NOT_FOUND
from registry.errors import NotFound
from registry.models import ArtifactRef, Heartbeat, VersionCreate
from registry.store.http import HttpStore
from registry.store.sql import SqlStore

from .conftest import Served, ServerProcess
from .remote_cli import RemoteCli

PAYMENTS = ("payments/fraud", "payments/refunds")
OTHERS = ("risk/score", "churn")
EVERY = PAYMENTS + OTHERS
MLFLOW = "/api/2.0/mlflow"
DOWNLOADS = "/api/2.0/mlflow-artifacts/artifacts/models"
LINEAGE = {"datasets": [{"name": "transactions", "version": "2026-11"}]}


@dataclass
class World:
    served: Served
    payments: str  # a payments/* reader's secret
    everything: str  # a * reader's
    champion: str  # payments/fraud@champion, a reader's
    payments_admin: str  # payments/*, an admin's

    def client(self, secret: str, base: str = "/api/v1") -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"}
        return httpx.Client(base_url=f"{self.served.url}{base}", headers=headers, timeout=30)


def _register(db: SqlStore, name: str) -> None:
    digest = uuid.uuid4().hex * 2
    ref = ArtifactRef(uri=f"file:///a/{digest}", sha256=digest, size=1)
    db.register(name, ref, VersionCreate.parse({"lineage": LINEAGE}))


def _bundle(admin: httpx.Client, sources: Path, name: str) -> None:
    """Version 1 of ``name`` through the MLflow door: a real bundle the server serves."""
    folder = sources / name.replace("/", "-")
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text(f"model: {name}\n")
    assert admin.post(f"{MLFLOW}/registered-models/create", json={"name": name}).is_success
    made = admin.post(
        f"{MLFLOW}/model-versions/create", json={"name": name, "source": f"file://{folder}"}
    )
    assert made.status_code == 200, made.text


def _beat(name: str) -> Heartbeat:
    now = datetime.now(UTC)
    return Heartbeat(
        resolver_id=f"web-1/{name}",
        model=name,
        ref=f"{name}@latest",
        region="us-east",
        host="web-1",
        pid=1,
        seq=0,
        started_at=now,
        seen_at=now,
    )


@pytest.fixture(scope="module")
def world(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("scoped")
    sources = home / "sources"
    sources.mkdir()
    with SqlStore(module_store_url, actor="test-admin") as db:
        _made, admin = db.create_token("admin", Role.ADMIN)
        secrets = {
            name: db.create_token(name, role, scopes=scopes)[1]
            for name, role, scopes in (
                ("payments", Role.READER, ["payments/*"]),
                ("everything", Role.READER, ["*"]),
                ("champion", Role.READER, ["payments/fraud@champion"]),
                ("payments-admin", Role.ADMIN, ["payments/*"]),
            )
        }
    args = ["--artifacts", str(home / "artifacts"), "--source-root", str(sources)]
    args += ["--webhook-max-backoff", "0.3"]
    server = ServerProcess(module_store_url, home / "server.log", args=args).start()
    served = Served(server, module_store_url, admin, {"admin": admin})
    try:
        # Built after the start, so every event is in the feed's memory too.
        with httpx.Client(
            base_url=served.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
        ) as http:
            for name in ("payments/fraud", "risk/score"):
                _bundle(http, sources, name)
        with served.db("test-admin") as db:
            for name in EVERY:
                _register(db, name)
                db.set_aliases(name, {"candidate": 1})
                db.heartbeat(_beat(name))
        yield World(
            served,
            secrets["payments"],
            secrets["everything"],
            secrets["champion"],
            secrets["payments-admin"],
        )
    finally:
        server.stop()


def _names(rows: list[dict[str, Any]], key: str = "name") -> set[str]:
    return {row[key] for row in rows}


# ---------------------------------------------------------------- the REST API


def test_a_namespace_reader_lists_only_its_namespace(world: World) -> None:
    with world.client(world.payments) as http:
        assert _names(http.get("/models").json()) == set(PAYMENTS)
        found = http.get("/search", params={"filter": "version >= 1", "limit": 2}).json()
        assert len(found) == 2 and _names(found) <= set(PAYMENTS)
        everything = http.get("/search", params={"filter": "version >= 1"}).json()
        assert _names(everything) == set(PAYMENTS)
        hits = http.get("/lineage/impact", params={"dataset": "transactions"}).json()
        assert _names(hits) == set(PAYMENTS)
        assert _names(http.get("/fleet").json(), "model") == set(PAYMENTS)
    with world.client(world.everything) as http:
        assert _names(http.get("/models").json()) == set(EVERY)
        hits = http.get("/lineage/impact", params={"dataset": "transactions"}).json()
        assert _names(hits) == set(EVERY)
        assert _names(http.get("/fleet").json(), "model") == set(EVERY)


READS = [
    "/models/{name}",
    "/versions/{name}",
    "/versions/{name}@1",
    "/resolve/{name}@candidate",
    "/history/{name}",
    "/policy/{name}",
    "/replicas/{name}@1",
]


@pytest.mark.parametrize("path", READS)
def test_another_namespace_answers_as_a_model_that_does_not_exist(world: World, path: str) -> None:
    with world.client(world.payments) as http, world.client(world.everything) as every:
        assert http.get(path.format(name="payments/fraud")).status_code == 200
        for name in OTHERS:
            assert every.get(path.format(name=name)).status_code == 200  # it is there
            hidden = http.get(path.format(name=name))
            ghost = every.get(path.format(name=f"{name}-ghost"))
            assert (hidden.status_code, ghost.status_code) == (404, 404)
            assert hidden.json() == json.loads(ghost.text.replace(f"{name}-ghost", name))


def test_the_cached_resolve_answers_a_scoped_token_as_the_app_does(world: World) -> None:
    """The fast path (``registry.server.reads``) answers remembered tokens from memory:
    a ``*`` token warms it, then the scoped token still gets the app's 404, twice."""
    with world.client(world.everything) as every, world.client(world.payments) as http:
        assert http.get("/whoami").status_code == 200  # the token is remembered
        for _ in range(2):
            assert every.get("/resolve/risk/score@candidate").json()["version"] == 1
            assert every.get("/resolve/payments/fraud@candidate").json()["version"] == 1
            assert http.get("/resolve/payments/fraud@candidate").json()["version"] == 1
            hidden = http.get("/resolve/risk/score@candidate")
            assert hidden.status_code == 404
            assert "risk/score@candidate does not resolve" in hidden.json()["error"]["message"]


def test_a_pointer_scope_reads_its_whole_model_and_nothing_else(world: World) -> None:
    with world.client(world.champion) as http:
        assert _names(http.get("/models").json()) == {"payments/fraud"}
        assert len(http.get("/versions/payments/fraud").json()) == 2
        assert http.get("/resolve/payments/fraud@candidate").status_code == 200
        assert http.get("/models/payments/refunds").status_code == 404
        events = http.get("/events", params={"since": 0}).json()
        assert events and _names(events, "model") == {"payments/fraud"}


# ---------------------------------------------------------------- the event feed


def _payments_events(world: World, since: int = 0) -> list[dict[str, Any]]:
    with world.served.db() as db:
        return [
            json.loads(e.model_dump_json())
            for e in db.events(since=since, limit=10_000)
            if e.model.startswith("payments/")
        ]


@pytest.mark.parametrize("wait", [0, 1], ids=["page", "long-poll"])
def test_the_feed_pages_hold_only_and_fully_the_tokens_events(world: World, wait: int) -> None:
    """A plain page is read through the guard, a long-poll from the feed's memory: both
    give the first N events the token may see, not N minus the ones it may not."""
    mine = _payments_events(world)
    with world.client(world.payments) as http:
        page = http.get("/events", params={"since": 0, "limit": 3, "wait": wait}).json()
        assert page == mine[:3]
        rest = http.get("/events", params={"since": page[-1]["seq"], "wait": wait}).json()
        assert rest == mine[3:]
        assert http.get("/events", params={"since": 0, "model": "risk/score"}).json() == []


def test_an_event_stream_carries_only_the_tokens_events(world: World) -> None:
    with world.served.db() as db:
        since = db.latest_seq()
    seen: list[dict[str, Any]] = []
    with (
        world.client(world.payments) as http,
        http.stream("GET", "/events/stream", params={"since": since}) as stream,
    ):
        with world.served.db("test-admin") as db:
            _register(db, "risk/score")
            _register(db, "churn")
            _register(db, "payments/refunds")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
                if seen[-1]["model"] == "payments/refunds":
                    break
    assert [e["model"] for e in seen] == ["payments/refunds"]
    assert seen == _payments_events(world, since)


# ---------------------------------------------------------------- the MLflow API


def test_mlflow_searches_and_reads_see_only_the_namespace(world: World) -> None:
    with world.client(world.payments, "") as http, world.client(world.everything, "") as every:
        models = http.get(f"{MLFLOW}/registered-models/search").json()["registered_models"]
        assert _names(models) == set(PAYMENTS)
        versions = http.get(f"{MLFLOW}/model-versions/search").json()["model_versions"]
        assert _names(versions) == set(PAYMENTS)
        assert len(every.get(f"{MLFLOW}/model-versions/search").json()["model_versions"]) > 4
        for path, params in (
            ("registered-models/get", {"name": "risk/score"}),
            ("registered-models/get-latest-versions", {"name": "risk/score"}),
            ("model-versions/get", {"name": "risk/score", "version": "1"}),
            ("registered-models/alias", {"name": "risk/score", "alias": "candidate"}),
            ("model-versions/get-download-uri", {"name": "risk/score", "version": "1"}),
        ):
            assert every.get(f"{MLFLOW}/{path}", params=params).status_code == 200
            hidden = http.get(f"{MLFLOW}/{path}", params=params)
            ghost = every.get(f"{MLFLOW}/{path}", params={**params, "name": "risk/ghost"})
            assert hidden.status_code == ghost.status_code == 404, path
            assert hidden.json() == json.loads(ghost.text.replace("risk/ghost", "risk/score"))


def test_mlflow_downloads_of_another_namespace_are_404(world: World) -> None:
    with world.client(world.payments, "") as http, world.client(world.everything, "") as every:
        mine = http.get(f"{DOWNLOADS}/payments/fraud@1/MLmodel")
        assert mine.status_code == 200 and mine.text == "model: payments/fraud\n"
        assert every.get(f"{DOWNLOADS}/risk/score@1/MLmodel").text == "model: risk/score\n"
        hidden = http.get(f"{DOWNLOADS}/risk/score@1/MLmodel")
        assert hidden.status_code == 404 and b"model:" not in hidden.content
        listing = http.get(
            DOWNLOADS.removesuffix("/models"), params={"path": "models/risk/score@1"}
        )
        assert listing.status_code == 404


# ---------------------------------------------------------------- the clients


def test_the_python_client_and_the_cli_see_what_the_token_sees(
    world: World, tmp_path: Path
) -> None:
    with HttpStore(world.served.url, token=world.payments) as remote:
        assert {m.name for m in remote.list_models()} == set(PAYMENTS)
        with pytest.raises(NotFound, match="model 'risk/score' not found"):
            remote.get_model("risk/score")
    cli = RemoteCli(world.served.url, tmp_path / "cli", world.payments)
    line = cli.fail("show", "risk/score", "latest", code=NOT_FOUND)
    assert line == "error: risk/score@latest does not resolve to a version"
    line = cli.fail("show", "risk/score", "1", code=NOT_FOUND)
    assert line == "error: model 'risk/score' not found"


# ---------------------------------------------------------------- webhooks


def test_a_namespace_webhook_receives_only_its_namespace(world: World) -> None:
    receiver = Receiver().up()
    try:
        with world.client(world.served.admin) as admin:
            for path, model in (("/payments", "payments/*"), ("/risk", "risk/*")):
                made = admin.post(
                    "/webhooks", json={"url": receiver.url(path), "events": ["*"], "model": model}
                )
                assert made.status_code == 201, made.text
        with world.served.db("test-admin") as db:
            for name in ("churn", "risk/score", "payments/fraud", "risk/score", "payments/refunds"):
                _register(db, name)
            last = db.latest_seq()
        payments = receiver.wait_for(2, "/payments")
        risk = receiver.wait_for(2, "/risk")
        assert [r.event.model for r in payments] == ["payments/fraud", "payments/refunds"]
        assert [r.event.model for r in risk] == ["risk/score", "risk/score"]
        # Once each cursor is past the last event, every delivery it will ever make
        # for them is a row: the payments webhook has none of another namespace.
        with world.client(world.served.admin) as admin:
            hooks = wait_until(
                lambda: admin.get("/webhooks").json(),
                lambda found: all(h["cursor"] >= last for h in found),
            )
            assert all(h["cursor"] >= last for h in hooks)
            for hook in hooks:
                rows = admin.get(f"/webhooks/{hook['id']}/deliveries").json()
                prefix = hook["model"].removesuffix("*")
                assert rows and all(row["model"].startswith(prefix) for row in rows), hook
        assert len(receiver.delivered()) == 4
    finally:
        receiver.down()


def test_a_scoped_admin_subscribes_only_inside_its_grant(world: World) -> None:
    with world.client(world.payments_admin) as http, world.client(world.served.admin) as admin:
        theirs = admin.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/r", "events": ["*"], "model": "risk/*"}
        ).json()["webhook"]
        for model in (None, "*", "risk/*", "risk/score", "churn"):
            refused = http.post(
                "/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["*"], "model": model}
            )
            assert refused.status_code == 403, (model, refused.text)
            assert "scoped to payments/*" in refused.json()["error"]["message"]
        made = http.post(
            "/webhooks",
            json={"url": "http://127.0.0.1:9/p", "events": ["*"], "model": "payments/*"},
        )
        assert made.status_code == 201, made.text
        ours = made.json()["webhook"]["id"]
        listed = {w["id"] for w in http.get("/webhooks").json()}
        assert ours in listed and theirs["id"] not in listed
        assert {ours, theirs["id"]} <= {w["id"] for w in admin.get("/webhooks").json()}
        assert http.get(f"/webhooks/{theirs['id']}/deliveries").status_code == 404
        assert http.delete(f"/webhooks/{theirs['id']}").status_code == 404
        assert http.delete(f"/webhooks/{ours}").status_code == 200
        assert theirs["id"] in {w["id"] for w in admin.get("/webhooks").json()}
