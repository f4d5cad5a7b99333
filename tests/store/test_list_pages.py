"""Pages of the other lists (#13 item 5): models by a name cursor, search and lineage
impact by offset, a model's events by sequence number. Every row appears exactly once
across pages, a bad page is one ``InvalidInput`` line, and a scoped token's pages are
full of what it may see. Each runs on SQLite, PostgreSQL and HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from registry.auth import Principal, Role, Scope
from registry.errors import InvalidInput
from registry.guard import GuardedStore
from registry.models import DEFAULT_SEARCH_LIMIT, ModelVersion, Stage, VersionCreate
from registry.store.base import RegistryStore
from registry.store.pages import all_models, impact_pages, model_events

from .support import artifact, promote, register_versions

ALL = 10_000
T = TypeVar("T")
NAMES = ["ads/ctr", "ads/reach", "churn", "fraud", "pay/fraud", "pay/limits", "pay/risk"]
DATASET = "transactions@2026-11-05"


def _by_offset(read: Callable[..., list[T]], limit: int) -> list[list[T]]:
    """Every page of ``read``, each from the offset after the ones before."""
    pages: list[list[T]] = []
    while page := read(limit=limit, offset=sum(map(len, pages))):
        pages.append(page)
    return pages


def _model_pages(store: RegistryStore, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while page := store.list_models(limit=limit, after=after):
        pages.append([m.name for m in page])
        after = page[-1].name
    return pages


def _keys(versions: list[ModelVersion]) -> list[tuple[str, int]]:
    return [(v.name, v.version) for v in versions]


def _trained_on_transactions(store: RegistryStore, name: str, count: int) -> None:
    meta = VersionCreate.parse(
        {"lineage": {"datasets": [{"name": "transactions", "version": "2026-11-05"}]}}
    )
    for i in range(count):
        store.register(name, artifact(f"{name}/{i}".encode()), meta)


def _scoped(store: RegistryStore, scope: str = "pay/*") -> GuardedStore:
    return GuardedStore(store, Principal("ci", Role.READER, (Scope.parse(scope),)))


# ---------------------------------------------------------------- a model's events


@pytest.mark.parametrize("page", [1, 2, 1000])
def test_model_events_walk_every_event_of_the_model_once(store: RegistryStore, page: int) -> None:
    register_versions(store, "fraud", 3)
    register_versions(store, "churn", 2)  # interleaved events of another model
    promote(store, "fraud", 2)
    register_versions(store, "churn", 1)

    walked = list(model_events(store, "fraud", page=page))
    stages = list(model_events(store, "fraud", kinds=("stage",), page=page))

    assert [e.seq for e in walked] == [e.seq for e in store.history("fraud")]
    assert [e.seq for e in stages] == [e.seq for e in store.history("fraud") if e.kind == "stage"]
    assert [e.to_value for e in stages] == ["Staging", "Production"]


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("limit", [1, 3])
def test_model_pages_hold_every_model_once_by_name(store: RegistryStore, limit: int) -> None:
    for name in reversed(NAMES):
        store.create_model(name)

    pages = _model_pages(store, limit)

    assert [n for page in pages for n in page] == NAMES
    assert all(len(page) == limit for page in pages[:-1])
    assert [m.name for m in store.list_models(limit=ALL)] == NAMES
    assert [m.name for m in all_models(store)] == NAMES


def test_a_model_page_starts_after_any_name(store: RegistryStore) -> None:
    for name in NAMES:
        store.create_model(name)
    register_versions(store, "fraud", 2)
    promote(store, "fraud", 2)

    page = store.list_models(limit=2, after="d")  # no model has that name

    assert [m.name for m in page] == ["fraud", "pay/fraud"]
    assert page[0].production == 2  # the page's models are whole: pointers and all
    assert store.list_models(after="pay/risk") == []


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 10_001}, {"limit": "5"}, {"after": 7}], ids=repr
)
def test_bad_model_pages_are_invalid_input(store: RegistryStore, query: dict[str, Any]) -> None:
    store.create_model("fraud")

    with pytest.raises(InvalidInput) as refused:
        store.list_models(**query)

    assert "\n" not in str(refused.value)
    assert [m.name for m in store.list_models()] == ["fraud"]


def test_a_scoped_tokens_model_pages_are_full(store: RegistryStore) -> None:
    for name in NAMES:
        store.create_model(name)
    reader = _scoped(store)

    first = reader.list_models(limit=2)  # the store's first two are both ads/…
    pages = _model_pages(reader, 2)

    assert [m.name for m in first] == ["pay/fraud", "pay/limits"]
    assert pages == [["pay/fraud", "pay/limits"], ["pay/risk"]]
    assert [m.name for m in all_models(reader)] == ["pay/fraud", "pay/limits", "pay/risk"]


# ---------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("text", "limit"),
    [("", 4), ("order by version asc", 3), ("stage = 'None' order by name desc", 5)],
)
def test_search_pages_hold_every_match_once(store: RegistryStore, text: str, limit: int) -> None:
    register_versions(store, "fraud", 7)
    register_versions(store, "churn", 6)
    everything = store.search(text, limit=ALL)

    pages = _by_offset(lambda **page: store.search(text, **page), limit)

    assert [v for page in pages for v in page] == everything
    assert len(everything) == 13
    assert all(len(page) == limit for page in pages[:-1])


def test_search_defaults_to_the_filters_limit_else_a_hundred(store: RegistryStore) -> None:
    register_versions(store, "fraud", DEFAULT_SEARCH_LIMIT + 2)
    newest_first = [("fraud", n) for n in range(DEFAULT_SEARCH_LIMIT + 2, 0, -1)]

    assert _keys(store.search("")) == newest_first[:DEFAULT_SEARCH_LIMIT]
    assert _keys(store.search("", offset=DEFAULT_SEARCH_LIMIT)) == newest_first[-2:]
    assert _keys(store.search("limit 3", offset=1)) == newest_first[1:4]
    assert _keys(store.search("limit 3", limit=5)) == newest_first[:5]  # the call's wins


def test_an_ascending_search_page_stays_put_while_versions_arrive(
    store: RegistryStore,
) -> None:
    register_versions(store, "fraud", 6)
    second = store.search("order by version asc", limit=3, offset=3)

    register_versions(store, "fraud", 4)

    assert store.search("order by version asc", limit=3, offset=3) == second
    assert [v.version for v in second] == [4, 5, 6]


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 10_001}, {"offset": -1}, {"offset": 1.5}], ids=repr
)
def test_bad_search_pages_are_invalid_input(store: RegistryStore, query: dict[str, Any]) -> None:
    register_versions(store, "fraud", 2)

    with pytest.raises(InvalidInput) as refused:
        store.search("", **query)

    assert "\n" not in str(refused.value)


def test_a_scoped_tokens_search_pages_count_only_its_versions(store: RegistryStore) -> None:
    register_versions(store, "pay/fraud", 3)
    register_versions(store, "ads/ctr", 3)
    register_versions(store, "pay/risk", 2)
    reader = _scoped(store)
    mine = [v for v in store.search("", limit=ALL) if v.name.startswith("pay/")]

    pages = _by_offset(lambda **page: reader.search("", **page), 2)

    assert [v for page in pages for v in page] == mine
    assert [len(page) for page in pages] == [2, 2, 1]


# ---------------------------------------------------------------- lineage impact


def _impact_world(store: RegistryStore) -> None:
    """Versions of three models on one dataset; fraud v2 and pay/risk v3 serve."""
    _trained_on_transactions(store, "fraud", 4)
    _trained_on_transactions(store, "ads/ctr", 3)
    _trained_on_transactions(store, "pay/risk", 3)
    _trained_on_transactions(store, "pay/fraud", 2)
    store.register("churn", artifact(b"churn on other data"), VersionCreate())
    promote(store, "fraud", 2)
    promote(store, "pay/risk", 3)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_lineage_impact_pages_hold_every_hit_once_live_first(
    store: RegistryStore, limit: int
) -> None:
    _impact_world(store)
    everything = store.lineage_impact(dataset=DATASET, limit=ALL)

    pages = _by_offset(lambda **page: store.lineage_impact(dataset=DATASET, **page), limit)

    assert [h for page in pages for h in page] == everything
    assert all(len(page) == limit for page in pages[:-1])
    assert [(h.name, h.version) for h in everything[:2]] == [("fraud", 2), ("pay/risk", 3)]
    assert [h.live for h in everything] == [True, True] + [False] * 10
    assert [h for page in impact_pages(store, dataset=DATASET, page=4) for h in page] == (
        everything
    )


def test_a_lineage_impact_page_has_its_hits_datasets(store: RegistryStore) -> None:
    _impact_world(store)

    (hit,) = store.lineage_impact(dataset=DATASET, limit=1, offset=4)

    assert (hit.name, hit.version, hit.stage) == ("ads/ctr", 3, Stage.NONE)
    assert hit.datasets == (DATASET,)
    assert store.lineage_impact(dataset=DATASET, offset=12) == []


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 10_001}, {"offset": -1}, {"offset": "2"}], ids=repr
)
def test_bad_lineage_impact_pages_are_invalid_input(
    store: RegistryStore, query: dict[str, Any]
) -> None:
    _trained_on_transactions(store, "fraud", 1)

    with pytest.raises(InvalidInput) as refused:
        store.lineage_impact(dataset=DATASET, **query)

    assert "\n" not in str(refused.value)


def test_a_scoped_tokens_lineage_impact_pages_are_full(store: RegistryStore) -> None:
    _impact_world(store)
    reader = _scoped(store)
    mine = [h for h in store.lineage_impact(dataset=DATASET) if h.name.startswith("pay/")]

    pages = _by_offset(lambda **page: reader.lineage_impact(dataset=DATASET, **page), 2)

    assert [h for page in pages for h in page] == mine
    assert [len(page) for page in pages] == [2, 2, 1]
    assert (mine[0].name, mine[0].version, mine[0].live) == ("pay/risk", 3, True)
    with pytest.raises(InvalidInput):
        reader.lineage_impact(dataset=DATASET, offset=-1)
