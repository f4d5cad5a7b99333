"""The paging query parameters of the model, search and lineage impact routes (#13 item
5), over real HTTP: ``limit``/``after`` on /models, ``limit``/``offset`` on /search and
/lineage/impact; a bad value is a 4xx with one line, never a 500."""

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


def _ok(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


def test_models_page_after_a_name(api: httpx.Client) -> None:
    prefix = unique("pages")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        register(api, name)

    first = _ok(api.get("/models", params={"limit": 2, "after": f"{prefix}-"}))
    rest = _ok(api.get("/models", params={"limit": 2, "after": first[-1]["name"]}))

    assert [m["name"] for m in first] == names[:2]
    assert [m["name"] for m in rest][:1] == names[2:]


def test_search_and_impact_page_by_offset(api: httpx.Client) -> None:
    name = unique("pages")
    lineage = {"datasets": [{"name": name, "version": "v1"}]}
    for _ in range(3):
        register(api, name, lineage=lineage)
    text = f"name = '{name}' order by version asc"

    def search(**query: Any) -> list[int]:
        return [v["version"] for v in _ok(api.get("/search", params={"filter": text, **query}))]

    def impact(**query: Any) -> list[int]:
        found = _ok(api.get("/lineage/impact", params={"dataset": name, **query}))
        return [h["version"] for h in found]

    assert search(limit=2) == [1, 2]
    assert search(limit=2, offset=2) == [3]
    assert impact(limit=2) == [1, 2]
    assert impact(limit=2, offset=2) == [3]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/models", {"limit": 0}, 422),
        ("/models", {"limit": 10_001}, 400),
        ("/models", {"after": "a\x00b"}, 422),
        ("/search", {"limit": 10_001}, 400),
        ("/search", {"offset": -1}, 422),
        ("/search", {"offset": "next"}, 422),
        ("/lineage/impact", {"dataset": "d", "limit": 0}, 422),
        ("/lineage/impact", {"dataset": "d", "limit": 10_001}, 400),
        ("/lineage/impact", {"dataset": "d", "offset": -1}, 422),
    ],
    ids=repr,
)
def test_bad_list_pages_are_4xx(
    api: httpx.Client, path: str, query: dict[str, Any], status: int
) -> None:
    found = error(api.get(path, params=query), status)
    assert "\n" not in found["message"]
