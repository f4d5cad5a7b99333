"""The data-subject routes against a real server: broken requests answer 4xx in the
API's error shape and change nothing; a 100,000-key manifest fits its route's limit,
which no other route shares."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Served

KEY = hashlib.sha256(b"subject").hexdigest()


def manifest(tag: str = "") -> dict[str, Any]:
    digest = hashlib.sha256(f"manifest{tag}{uuid.uuid4()}".encode()).hexdigest()
    return {"uri": f"file:///manifests/{digest}", "sha256": digest, "size": 1, "format": "x"}


def keys(count: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]


@pytest.fixture
def api(module_served: Served) -> Iterator[httpx.Client]:
    with module_served.client() as client:
        yield client


@pytest.fixture
def dataset() -> str:
    return f"ds-{uuid.uuid4().hex[:10]}"


def error(response: httpx.Response, statuses: tuple[int, ...]) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()["error"]
    assert found["message"] and found["code"]
    return found


@pytest.mark.parametrize(
    "body",
    [
        {"manifest": manifest(), "subjects": ["nan"]},
        {"manifest": manifest(), "subjects": [KEY.upper()]},
        {"manifest": manifest(), "subjects": [1.5]},
        {"manifest": manifest(), "subjects": [None]},
        {"manifest": manifest(), "subjects": KEY},
        {"manifest": manifest(), "subjects": [KEY + "\u0000"]},
        {"manifest": {**manifest(), "sha256": "xyz"}, "subjects": [KEY]},
        {"manifest": manifest(), "subjects": [KEY], "extra": 1},
        {"subjects": [KEY]},
        {},
    ],
    ids=[
        "nan-key",
        "uppercase",
        "number",
        "null",
        "one-string",
        "nul",
        "bad-sha",
        "unknown-field",
        "no-manifest",
        "empty",
    ],
)
def test_a_broken_manifest_is_4xx_and_records_nothing(
    api: httpx.Client, dataset: str, body: dict[str, Any]
) -> None:
    path = f"/datasets/{dataset}/versions/v1/manifest"

    error(api.post(path, json=body), (400, 422))

    error(api.get(path), (404,))


def test_a_manifest_that_is_not_json_is_4xx(api: httpx.Client, dataset: str) -> None:
    path = f"/datasets/{dataset}/versions/v1/manifest"

    response = api.post(path, content=b"\x00" * 64, headers={"Content-Type": "application/json"})

    error(response, (400, 422))


def test_a_large_manifest_fits_its_route_and_reads_back(api: httpx.Client, dataset: str) -> None:
    subjects = keys(100_000)  # ~6.7 MB of JSON, over the server's default 1 MiB

    made = api.post(
        f"/datasets/{dataset}/versions/v1/manifest",
        json={"manifest": manifest(), "subjects": subjects},
    )

    assert made.status_code == 200, made.text
    assert made.json()["subjects"] == 100_000
    lineage = api.get(f"/subjects/{subjects[-1]}/lineage").json()
    assert lineage["datasets"] == [{"dataset": dataset, "version": "v1"}]


def test_other_routes_keep_the_default_body_limit(api: httpx.Client) -> None:
    response = api.post("/erasures", json={"subject": KEY, "reason": "x" * (2 << 20)})

    assert error(response, (413,))["code"] == "too_large"


def test_a_namespaced_dataset_name_works_in_the_path(api: httpx.Client, dataset: str) -> None:
    name = f"team/{dataset}"
    made = api.post(
        f"/datasets/{name}/versions/v1/manifest", json={"manifest": manifest(), "subjects": [KEY]}
    )

    assert made.status_code == 200, made.text
    assert api.get(f"/datasets/{name}/versions/v1/manifest").json()["dataset"] == name


@pytest.mark.parametrize("subject", ["nan", "x" * 64, KEY.upper(), KEY[:-1]])
def test_the_lineage_of_a_bad_key_is_400(api: httpx.Client, subject: str) -> None:
    assert error(api.get(f"/subjects/{subject}/lineage"), (400,))["code"] == "invalid_input"


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "nan", "reason": "x"},
        {"subject": KEY, "reason": ""},
        {"subject": KEY, "reason": "   "},
        {"subject": KEY},
        {"subject": KEY, "reason": "x\u0000"},
        {"subject": KEY, "reason": "x", "more": True},
        {"subject": 7, "reason": "x"},
    ],
    ids=["bad-key", "blank", "spaces", "no-reason", "nul", "unknown-field", "number"],
)
def test_a_broken_erasure_request_is_4xx_and_records_nothing(
    api: httpx.Client, body: dict[str, Any]
) -> None:
    before = api.get("/erasures").json()

    error(api.post("/erasures", json=body), (400, 422))

    assert api.get("/erasures").json() == before


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/erasures/999999/justify", {"name": "fraud", "version": 1, "reason": "x"}, (404,)),
        ("/erasures/0/justify", {"name": "fraud", "version": 1, "reason": "x"}, (422,)),
        ("/erasures/nan/justify", {"name": "fraud", "version": 1, "reason": "x"}, (422,)),
        ("/erasures/1/justify", {"name": "fraud", "version": "nan", "reason": "x"}, (422,)),
        ("/erasures/1/justify", {"name": "fraud", "version": 2**40, "reason": "x"}, (422,)),
        ("/erasures/1/justify", {"name": "Bad Name", "version": 1, "reason": "x"}, (400,)),
        ("/erasures/1/justify", {"name": "fraud", "version": 1}, (400, 404)),
    ],
    ids=["unknown", "zero", "nan-id", "nan-version", "huge-version", "bad-name", "no-reason"],
)
def test_a_broken_justification_is_4xx(
    api: httpx.Client, path: str, body: dict[str, Any], status: tuple[int, ...]
) -> None:
    error(api.post(path, json=body), status)


@pytest.mark.parametrize(
    "query", [{"open_only": "maybe"}, {"model": "Bad Name"}, {"model": "absent-model"}]
)
def test_a_broken_erasure_listing_is_4xx(api: httpx.Client, query: dict[str, str]) -> None:
    error(api.get("/erasures", params=query), (400, 404, 422))
