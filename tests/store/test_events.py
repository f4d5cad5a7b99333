"""The event log: one gap-free sequence, the audit trail and the change feed in one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from release_facts import make_releasable

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import Event, Stage, VersionCreate
from registry.store.sql import SqlStore

from .support import artifact, promote, register_versions, serve_in_turn


def _busy_day(store: SqlStore) -> None:
    """Changes on two models, with refused and failed calls in between."""
    serve_in_turn(store, "fraud", 3)
    register_versions(store, "churn", 2)
    with pytest.raises(Conflict):
        store.transition("fraud", 1, Stage.STAGING)
    with pytest.raises(Conflict):
        store.set_aliases("fraud", {"champion": 1}, expected_generation=0)
    with pytest.raises(GateRefused):
        store.rollback("churn", reason="nothing served")
    with pytest.raises(InvalidInput):
        store.register("churn", artifact(b"x"), {"metrics": {"auc": "high"}})  # type: ignore[arg-type]
    store.set_aliases("churn", {"stable": 2, "challenger": 1})
    store.rollback("fraud", reason="bad p99")
    store.update_version("churn", 1, tags={"team": "growth"}, description="baseline")


def test_sequence_numbers_have_no_gaps(store: SqlStore) -> None:
    _busy_day(store)

    seqs = [e.seq for e in store.events()]

    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= 20


def test_event_times_never_go_backwards(store: SqlStore) -> None:
    _busy_day(store)

    times = [e.at for e in store.events()]

    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)


def test_registration_events(store: SqlStore) -> None:
    first = store.register("fraud", artifact(b"a"), VersionCreate())
    second = store.register("fraud", artifact(b"b"), VersionCreate())

    events = [(e.kind, e.version, e.to_value, e.generation) for e in store.events()]

    assert events == [
        ("model.created", None, None, 0),
        ("version.registered", 1, first.artifact.sha256, 0),
        ("version.registered", 2, second.artifact.sha256, 0),
    ]


def test_each_change_records_actor_reason_and_generation(
    make_store: Callable[..., SqlStore],
) -> None:
    ops, oncall = make_store(actor="release-bot"), make_store(actor="alice@oncall")
    serve_in_turn(ops, "fraud", 2)
    last = ops.events()[-1].seq
    generation = ops.get_model("fraud").generation

    changes = [
        oncall.rollback("fraud", reason="p99 doubled"),
        ops.set_aliases("fraud", {"champion": 1}, reason="pin"),
        oncall.transition("fraud", 1, Stage.ARCHIVED, reason="retire"),
    ]

    logged = ops.events(since=last)
    assert logged == [e for change in changes for e in change.events]
    assert [(e.kind, e.actor, e.reason, e.generation) for e in logged] == [
        ("rollback", "alice@oncall", "p99 doubled", generation + 1),
        ("alias", "release-bot", "pin", generation + 2),
        ("stage", "alice@oncall", "retire", generation + 3),
    ]


def test_events_since_pages_through_the_log(store: SqlStore) -> None:
    _busy_day(store)
    pages: list[list[Event]] = []
    since = 0

    while page := store.events(since=since, limit=4):
        pages.append(page)
        since = page[-1].seq

    assert all(len(page) <= 4 for page in pages)
    assert [e for page in pages for e in page] == store.events()


def test_events_since_the_last_seq_is_empty(store: SqlStore) -> None:
    _busy_day(store)

    assert store.events(since=store.events()[-1].seq) == []


def test_events_filter_by_model(store: SqlStore) -> None:
    _busy_day(store)

    churn = store.events(model="churn")

    assert churn == [e for e in store.events() if e.model == "churn"]
    assert {e.model for e in churn} == {"churn"}
    assert store.events(model="churn", since=churn[1].seq, limit=2) == churn[2:4]


def test_events_of_an_unknown_model_is_empty(store: SqlStore) -> None:
    _busy_day(store)

    assert store.events(model="nosuch") == []


@pytest.mark.parametrize(("since", "limit"), [(-1, 10), (0, 0), (0, -5), (0, 10_001)], ids=str)
def test_events_refuses_bad_paging(store: SqlStore, since: int, limit: int) -> None:
    with pytest.raises(InvalidInput):
        store.events(since=since, limit=limit)


def test_history_is_the_models_events_oldest_first(store: SqlStore) -> None:
    _busy_day(store)

    history = store.history("fraud")

    assert history == [e for e in store.events() if e.model == "fraud"]
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert history[0].kind == "model.created"
    assert history[-1].kind == "rollback"


def test_history_of_a_missing_model_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.history("nosuch")


def test_last_event_of_a_model_is_its_latest_change(store: SqlStore) -> None:
    _busy_day(store)

    models = {m.name: m for m in store.list_models()}

    assert models["fraud"].last_event == store.history("fraud")[-1]
    assert models["churn"].last_event == store.history("churn")[-1]


# ---------------------------------------------------------------- production_at


def _last_at(store: SqlStore) -> datetime:
    return store.events()[-1].at


@pytest.fixture
def timeline(store: SqlStore) -> dict[str, datetime]:
    """Instants (event times) of a model's life: v1 serves, v2 replaces it,
    a rollback brings v1 back, v1 is archived and nothing serves."""
    at: dict[str, datetime] = {}
    register_versions(store, "fraud", 2)
    at["registered"] = _last_at(store)
    promote(store, "fraud", 1)
    at["v1 serves"] = _last_at(store)
    store.transition("fraud", 2, Stage.STAGING)
    at["v2 staged"] = _last_at(store)
    make_releasable(store, "fraud", 2)
    store.transition("fraud", 2, Stage.PRODUCTION)
    at["v2 serves"] = _last_at(store)
    store.rollback("fraud", reason="bad p99")
    at["rolled back"] = _last_at(store)
    store.transition("fraud", 1, Stage.ARCHIVED)
    at["archived"] = _last_at(store)
    return at


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("registered", None),
        ("v1 serves", 1),
        ("v2 staged", 1),
        ("v2 serves", 2),
        ("rolled back", 1),
        ("archived", None),
    ],
)
def test_production_at_an_instant(
    store: SqlStore, timeline: dict[str, datetime], instant: str, expected: int | None
) -> None:
    assert store.production_at("fraud", timeline[instant]) == expected


def test_production_just_before_a_change_is_the_old_version(
    store: SqlStore, timeline: dict[str, datetime]
) -> None:
    just_before = timeline["v2 serves"] - timedelta(microseconds=1)

    assert store.production_at("fraud", just_before) == 1


def test_production_before_the_model_existed_is_none(
    store: SqlStore, timeline: dict[str, datetime]
) -> None:
    assert store.production_at("fraud", datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_production_at_accepts_any_timezone(store: SqlStore, timeline: dict[str, datetime]) -> None:
    new_york = timeline["v2 serves"].astimezone(timezone(timedelta(hours=-5)))

    assert store.production_at("fraud", new_york) == 2


def test_production_at_refuses_a_naive_time(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(InvalidInput, match="timezone"):
        store.production_at("fraud", datetime(2026, 11, 1, 2, 14))


def test_production_at_of_a_missing_model_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.production_at("nosuch", datetime.now(UTC))
