"""Bad input at the MLflow door: always a 4xx in MLflow's error shape, never a 5xx.

The MLflow client retries a 5xx for minutes, so an error the caller caused must be a
4xx with ``{"error_code", "message"}``. Every endpoint gets the same table of broken
requests (wrong types, missing fields, unstorable text, absurd numbers, injection in
filters and page tokens, path traversal in downloads) against a real server process,
and nothing a refused request touched changes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from registry.store.sql import SqlStore

from .conftest import Served

ROOT = "/api/2.0/mlflow"
ENDPOINTS: list[tuple[str, str]] = [
    ("POST", "/registered-models/create"),
    ("GET", "/registered-models/get"),
    ("POST", "/registered-models/rename"),
    ("PATCH", "/registered-models/update"),
    ("DELETE", "/registered-models/delete"),
    ("GET", "/registered-models/search"),
    ("POST", "/registered-models/get-latest-versions"),
    ("GET", "/registered-models/get-latest-versions"),
    ("POST", "/registered-models/set-tag"),
    ("DELETE", "/registered-models/delete-tag"),
    ("POST", "/registered-models/alias"),
    ("DELETE", "/registered-models/alias"),
    ("GET", "/registered-models/alias"),
    ("POST", "/model-versions/create"),
    ("GET", "/model-versions/get"),
    ("PATCH", "/model-versions/update"),
    ("DELETE", "/model-versions/delete"),
    ("GET", "/model-versions/search"),
    ("POST", "/model-versions/transition-stage"),
    ("GET", "/model-versions/get-download-uri"),
    ("POST", "/model-versions/set-tag"),
    ("DELETE", "/model-versions/delete-tag"),
]
NAME = "bad-input/fraud"
BROKEN: list[dict[str, Any]] = [
    {},
    {"name": None},
    {"name": 7, "version": [], "key": {}, "value": 1.5, "stage": None},
    {"name": "x" * 10_000, "version": "1", "alias": "a", "key": "k", "value": "v"},
    {"name": "Not A Name!", "version": "1", "alias": "a", "key": "k", "new_name": "y"},
    {"name": NAME, "version": "abc", "alias": "production", "key": "k", "stage": "Nope"},
    {"name": NAME, "version": "-1", "alias": "", "key": "", "stage": "Production"},
    {"name": NAME, "version": "99999999999999999999", "alias": "7", "key": "a b"},
    {"name": NAME, "version": "1", "key": "modelreg.mlflow.source", "value": "forged"},
    {"name": "nul\x00byte", "version": "1", "new_name": "\ud800", "source": "\x00"},
    {"name": NAME, "version": "1", "source": "file:///etc/passwd", "alias": "../../x"},
    {"name": NAME, "filter": "name = 'x' OR 1=1; DROP TABLE event --", "page_token": "!!"},
    {"name": NAME, "filter": "tags.`a` = 'unterminated", "max_results": "1e9"},
    {"name": NAME, "max_results": -5, "order_by": "name SIDEWAYS", "page_token": "e30="},
    {"name": NAME, "stages": ["Production", 3], "archive_existing_versions": "perhaps"},
]


def _send(client: httpx.Client, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    if method == "GET":
        params = {k: v for k, v in body.items() if isinstance(v, str | int | list) and _url_safe(v)}
        return client.get(ROOT + path, params=params)
    content = json.dumps(body).encode()  # ASCII: a lone surrogate travels as an escape
    headers = {"Content-Type": "application/json"}
    return client.request(method, ROOT + path, content=content, headers=headers)


def _url_safe(value: object) -> bool:
    """Whether httpx can put it in a query string (a lone surrogate cannot be)."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _client(served: Served) -> httpx.Client:
    headers = {"Authorization": f"Bearer {served.admin}"}
    return httpx.Client(base_url=served.url, headers=headers, timeout=30)


def _state(db: SqlStore) -> tuple[Any, ...]:
    return (db.latest_seq(), db.list_models())


@pytest.fixture
def seeded(module_served: Served) -> Served:
    """NAME with one version that never served (a broken request may still be a valid
    delete or rename of it: that answers 200, and the next test seeds it again)."""
    from registry.models import ArtifactRef, VersionCreate

    with module_served.db("seed") as db:
        if NAME not in {m.name for m in db.list_models()}:
            db.create_model(NAME)
        if not db.list_versions(NAME):
            digest = uuid.uuid4().hex * 2
            ref = ArtifactRef(uri="file:///a", sha256=digest, size=1)
            db.register(NAME, ref, VersionCreate())
    return module_served


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_every_broken_request_is_a_4xx_in_mlflow_shape_and_changes_nothing(
    seeded: Served, method: str, path: str
) -> None:
    with _client(seeded) as client, seeded.db() as db:
        before = _state(db)
        for body in BROKEN:
            reply = _send(client, method, path, body)
            assert 400 <= reply.status_code < 500 or reply.status_code == 200, (body, reply.text)
            if reply.status_code >= 400:
                error = reply.json()
                assert set(error) == {"error_code", "message"}, reply.text
                assert error["message"] and "\n" not in error["message"]
        if method == "GET":
            assert _state(db) == before


def test_a_download_path_cannot_leave_the_registry(seeded: Served) -> None:
    with _client(seeded) as client:
        for path in (
            "../../../../etc/passwd",
            "models/..%2F..%2Fetc/passwd",
            f"models/{NAME}@1/../../../etc/passwd",
            f"models/{NAME}@1/%2e%2e/%2e%2e/etc/passwd",
            "models/@1",
            f"models/{NAME}@x/MLmodel",
        ):
            reply = client.get(f"/api/2.0/mlflow-artifacts/artifacts/{path}")
            assert 400 <= reply.status_code < 500, (path, reply.text)
            assert b"root:" not in reply.content
        listing = client.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."})
        assert 400 <= listing.status_code < 500


def test_an_unknown_mlflow_endpoint_is_endpoint_not_found(seeded: Served) -> None:
    with _client(seeded) as client:
        reply = client.post(f"{ROOT}/experiments/create", json={"name": "e"})
    assert reply.status_code == 404
    assert reply.json()["error_code"] == "ENDPOINT_NOT_FOUND"
