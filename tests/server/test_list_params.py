"""The paging query parameters of the list routes (#13 item 5), over real HTTP: events
(``kinds``, ``before``, ``newest``) and versions (``stage``, ``before``); a bad value is
a 4xx with one line, never a 500 and never a silently shorter list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Served
from .test_rest_api import error, register, unique


@pytest.fixture
def api(module_served: Served) -> Iterator[httpx.Client]:
    with module_served.client() as client:
        yield client


@pytest.fixture
def name(api: httpx.Client) -> str:
    made = unique()
    for _ in range(5):
        register(api, made)
    moved = api.put(f"/stage/{made}@2", json={"stage": "Staging"})
    assert moved.status_code == 200, moved.text
    return made


def _events(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    reply = api.get("/events", params=query)
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


def test_events_by_kind_and_backward(api: httpx.Client, name: str) -> None:
    mine = _events(api, model=name, limit=100)
    newest = _events(api, model=name, limit=2, newest="true")
    older = _events(api, model=name, limit=2, newest="true", before=newest[0]["seq"])
    stages = _events(api, model=name, kinds="stage,alias", limit=100)

    assert newest == mine[-2:]
    assert older == mine[-4:-2]
    assert [(e["kind"], e["to_value"]) for e in stages] == [("stage", "Staging")]


def test_versions_by_stage_and_before(api: httpx.Client, name: str) -> None:
    def versions(**query: Any) -> list[int]:
        reply = api.get(f"/versions/{name}", params=query)
        assert reply.status_code == 200, reply.text
        return [v["version"] for v in reply.json()]

    assert versions(limit=2) == [5, 4]
    assert versions(limit=2, before=4) == [3, 2]
    assert versions(stage="staging") == [2]
    assert versions(stage="None", before=2) == [1]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 10_001}, 422),
        ({"before": 0}, 422),
        ({"newest": "perhaps"}, 422),
        ({"kinds": ""}, 400),
        ({"kinds": "stage,nosuch"}, 400),
        ({"kinds": "stage", "wait": 1}, 400),
        ({"newest": "true", "wait": 1}, 400),
    ],
    ids=repr,
)
def test_bad_event_pages_are_4xx(api: httpx.Client, query: dict[str, Any], status: int) -> None:
    found = error(api.get("/events", params=query), status)
    assert "\n" not in found["message"]


@pytest.mark.parametrize(
    ("query", "status"),
    [({"limit": 0}, 422), ({"limit": 10_001}, 400), ({"before": 0}, 422), ({"stage": "Live"}, 400)],
    ids=repr,
)
def test_bad_version_pages_are_4xx(
    api: httpx.Client, name: str, query: dict[str, Any], status: int
) -> None:
    found = error(api.get(f"/versions/{name}", params=query), status)
    assert "\n" not in found["message"]
