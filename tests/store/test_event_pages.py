"""Pages of every list (#13 items 1, 2, 5): the event log forward (``since``) and
backward (``before`` + ``newest``), by kind; versions by stage and a version cursor;
lineage impact with the live versions first. Each runs on SQLite, PostgreSQL and HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.models import POINTER_KINDS, Event, Stage, VersionCreate
from registry.store.base import RegistryStore

from .support import artifact, promote, register_versions, serve_in_turn

ALL = 10_000


def _a_busy_log(store: RegistryStore) -> None:
    """Registrations, stage moves, aliases and a rollback on two models."""
    serve_in_turn(store, "fraud", 4)
    register_versions(store, "churn", 3)
    store.set_aliases("churn", {"challenger": 2})
    store.rollback("fraud", reason="bad p99")
    register_versions(store, "fraud", 3)


def _forward(store: RegistryStore, limit: int, **query: Any) -> list[list[Event]]:
    pages, since = [], 0
    while page := store.events(since=since, limit=limit, **query):
        pages.append(page)
        since = page[-1].seq
    return pages


def _backward(store: RegistryStore, limit: int, **query: Any) -> list[list[Event]]:
    pages, before = [], None
    while page := store.events(before=before, limit=limit, newest=True, **query):
        pages.append(page)
        before = page[0].seq
    return pages


def _seqs(pages: list[list[Event]]) -> list[int]:
    return [e.seq for page in pages for e in page]


# ---------------------------------------------------------------- events


@pytest.mark.parametrize("limit", [1, 4, 7])
def test_forward_pages_hold_every_event_once(store: RegistryStore, limit: int) -> None:
    _a_busy_log(store)
    everything = store.events(limit=ALL)

    pages = _forward(store, limit)

    assert [e for page in pages for e in page] == everything
    assert all(len(page) == limit for page in pages[:-1])
    assert len(everything) > 3 * limit


@pytest.mark.parametrize("limit", [1, 4, 7])
def test_backward_pages_hold_every_event_once(store: RegistryStore, limit: int) -> None:
    _a_busy_log(store)
    everything = store.events(limit=ALL)

    pages = _backward(store, limit)

    assert [e for page in reversed(pages) for e in page] == everything
    assert all(_seqs([page]) == sorted(_seqs([page])) for page in pages)  # oldest first
    assert all(len(page) == limit for page in pages[:-1])


def test_newest_gives_the_newest_events_oldest_first(store: RegistryStore) -> None:
    _a_busy_log(store)
    everything = store.events(limit=ALL)

    assert store.events(limit=5, newest=True) == everything[-5:]
    assert store.events(limit=5) == everything[:5]
    middle = everything[10].seq
    assert store.events(before=middle, limit=3, newest=True) == everything[7:10]
    assert store.events(since=everything[2].seq, before=middle, limit=ALL) == everything[3:10]


def test_a_forward_page_stays_put_while_events_arrive(store: RegistryStore) -> None:
    _a_busy_log(store)
    first = store.events(limit=5)
    register_versions(store, "fraud", 2)  # written between two page reads
    store.set_aliases("churn", {"challenger": 3})

    rest = [e for page in _forward_from(store, first[-1].seq, 5) for e in page]

    assert first + rest == store.events(limit=ALL)
    assert len({e.seq for e in first + rest}) == len(first + rest)


def _forward_from(store: RegistryStore, since: int, limit: int) -> list[list[Event]]:
    pages = []
    while page := store.events(since=since, limit=limit):
        pages.append(page)
        since = page[-1].seq
    return pages


def test_a_backward_walk_is_not_moved_by_new_events(store: RegistryStore) -> None:
    _a_busy_log(store)
    before = store.events(limit=ALL)
    newest = store.events(limit=4, newest=True)
    register_versions(store, "churn", 2)  # newer than the walk's cursor: never in it

    older: list[Event] = []
    cursor = newest[0].seq
    while page := store.events(before=cursor, limit=4, newest=True):
        older = page + older
        cursor = page[0].seq

    assert older + newest == before
    assert store.events(limit=ALL)[: len(before)] == before


def test_pointer_kinds_leave_out_registrations(store: RegistryStore) -> None:
    _a_busy_log(store)
    everything = store.events(limit=ALL)

    pointers = store.events(limit=ALL, kinds=sorted(POINTER_KINDS))

    assert pointers == [e for e in everything if e.kind in POINTER_KINDS]
    assert {e.kind for e in pointers} == {"stage", "alias", "rollback"}
    assert "version.registered" in {e.kind for e in everything}
    assert store.events(limit=ALL, kinds=["version.registered"]) == [
        e for e in everything if e.kind == "version.registered"
    ]


def test_a_models_newest_pointer_changes_page_backward(store: RegistryStore) -> None:
    _a_busy_log(store)
    fraud = [e for e in store.events(limit=ALL) if e.model == "fraud" and e.kind in POINTER_KINDS]
    query: dict[str, Any] = {"model": "fraud", "kinds": POINTER_KINDS}

    assert store.events(limit=3, newest=True, **query) == fraud[-3:]
    assert _seqs(_backward(store, 2, **query)[::-1]) == [e.seq for e in fraud]
    assert [e for page in _forward(store, 2, **query) for e in page] == fraud
    assert fraud[-1].kind == "rollback"


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"since": -1},
        {"before": 0},
        {"kinds": []},
        {"kinds": ["stage", "nosuch"]},
        {"kinds": "stage"},
        {"limit": True},
    ],
    ids=repr,
)
def test_bad_event_pages_are_invalid_input(store: RegistryStore, query: dict[str, Any]) -> None:
    _a_busy_log(store)
    before = store.events(limit=ALL)

    with pytest.raises(InvalidInput) as refused:
        store.events(**query)

    assert "\n" not in str(refused.value)
    assert store.events(limit=ALL) == before


# ---------------------------------------------------------------- versions


def test_version_pages_hold_every_version_once(store: RegistryStore) -> None:
    register_versions(store, "fraud", 12)

    pages: list[list[int]] = []
    before = None
    while page := store.list_versions("fraud", limit=5, before=before):
        pages.append([v.version for v in page])
        before = page[-1].version

    assert pages == [[12, 11, 10, 9, 8], [7, 6, 5, 4, 3], [2, 1]]


def test_version_pages_by_stage(store: RegistryStore) -> None:
    register_versions(store, "fraud", 8)
    for version in (2, 5, 7):
        store.transition("fraud", version, Stage.STAGING)
    promote(store, "fraud", 3)

    def staged(**query: Any) -> list[int]:
        return [v.version for v in store.list_versions("fraud", stage=Stage.STAGING, **query)]

    assert staged() == [7, 5, 2]
    assert staged(limit=2) == [7, 5]
    assert staged(before=5) == [2]
    assert [v.version for v in store.list_versions("fraud", stage=Stage.PRODUCTION)] == [3]
    assert [v.version for v in store.list_versions("fraud", stage=Stage.NONE, limit=2)] == [8, 6]
    assert store.list_versions("fraud", before=1) == []


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 10_001}, {"before": 0}, {"stage": "Live"}], ids=repr
)
def test_bad_version_pages_are_invalid_input(store: RegistryStore, query: dict[str, Any]) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(InvalidInput):
        store.list_versions("fraud", **query)


# ---------------------------------------------------------------- lineage impact

SIGNATURE = {"features": [{"name": "amount", "dtype": "float64"}]}


def _on_transactions(store: RegistryStore, name: str) -> int:
    meta = VersionCreate.parse(
        {
            "signature": SIGNATURE,
            "lineage": {"datasets": [{"name": "transactions", "version": "2026-11-05"}]},
        }
    )
    data = f"{name}{len(store.events(limit=ALL))}".encode()
    return store.register(name, artifact(data), meta).version


def test_lineage_impact_lists_live_versions_first(store: RegistryStore) -> None:
    from release_facts import make_releasable

    from registry.models import Signature

    made: dict[str, list[int]] = {"churn": [], "fraud": []}
    for name in ("churn", "fraud", "churn", "fraud", "fraud", "fraud"):
        made[name].append(_on_transactions(store, name))
    promote(store, "fraud", 2)
    store.transition("fraud", 3, Stage.STAGING)
    make_releasable(store, "fraud", 3)
    store.set_aliases("fraud", {"champion": 3, "shadow": 4})  # champion is protected
    store.create_app_release("checkout", "2.3", Signature.model_validate(SIGNATURE))
    store.bind_app_release("checkout", "2.3", "churn", version=1)

    hits = store.lineage_impact(dataset="transactions@2026-11-05")

    assert [(h.name, h.version, h.live, h.why_live) for h in hits] == [
        ("churn", 1, True, ("release checkout@2.3",)),
        ("fraud", 2, True, ("Production",)),
        ("fraud", 3, True, ("alias champion (protected)",)),
        ("churn", 2, False, ()),
        ("fraud", 1, False, ()),
        ("fraud", 4, False, ()),
    ]
    assert made == {"churn": [1, 2], "fraud": [1, 2, 3, 4]}
