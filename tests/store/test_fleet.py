"""The event log's head (``latest_seq``) and the fleet's heartbeats, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from registry.errors import Conflict, InvalidInput
from registry.models import Heartbeat, Stage
from registry.store.sql import SqlStore

from .support import promote, register_versions

T0 = datetime(2026, 11, 1, 2, 14, tzinfo=UTC)


def beat(resolver_id: str = "web-1:4242/fraud@production", **changes: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "resolver_id": resolver_id,
        "model": "fraud",
        "ref": "fraud@production",
        "region": "us-east",
        "host": "web-1",
        "pid": 4242,
        "version": 7,
        "generation": 12,
        "seq": 30,
        "started_at": T0,
        "seen_at": T0 + timedelta(seconds=5),
    }
    return Heartbeat(**{**values, **changes})


# ---------------------------------------------------------------- latest_seq


def test_an_empty_log_is_at_zero(store: SqlStore) -> None:
    assert store.latest_seq() == 0


def test_latest_seq_is_the_newest_event(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    promote(store, "fraud", 1)

    assert store.latest_seq() == store.events()[-1].seq


def test_a_change_that_fails_leaves_latest_seq_alone(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    before = store.latest_seq()

    with pytest.raises(Conflict):
        store.set_aliases("fraud", {"champion": 1}, expected_generation=7)

    assert store.latest_seq() == before


# ---------------------------------------------------------------- heartbeats


def test_a_heartbeat_reads_back_as_sent(store: SqlStore) -> None:
    sent = beat(degraded=True, reason="eu-west lacks v8")

    store.heartbeat(sent)

    assert store.fleet() == [sent]


def test_the_next_beat_replaces_the_resolvers_row(store: SqlStore) -> None:
    store.heartbeat(beat())

    store.heartbeat(beat(version=8, generation=13, seq=31, seen_at=T0 + timedelta(seconds=10)))

    assert [(b.version, b.generation, b.seq, b.seen_at) for b in store.fleet()] == [
        (8, 13, 31, T0 + timedelta(seconds=10))
    ]


def test_a_resolver_with_nothing_loaded_reports_no_version(store: SqlStore) -> None:
    store.heartbeat(beat(version=None, generation=None, seq=0, degraded=True, reason="cold"))

    (only,) = store.fleet()

    assert (only.version, only.generation, only.degraded) == (None, None, True)


def test_the_fleet_is_sorted_by_model_ref_region_and_id(store: SqlStore) -> None:
    beats = [
        beat("d", model="churn", ref="churn@production"),
        beat("c", region="us-east"),
        beat("b", region="eu-west"),
        beat("a", region="us-east"),
        beat("e", ref="app=fraud-service,release=1.0.0"),
    ]
    for b in beats:
        store.heartbeat(b)

    assert [b.resolver_id for b in store.fleet()] == ["d", "e", "b", "a", "c"]


def test_the_fleet_of_one_model(store: SqlStore) -> None:
    store.heartbeat(beat("a"))
    store.heartbeat(beat("b", model="churn", ref="churn@production"))

    assert [b.resolver_id for b in store.fleet("churn")] == ["b"]
    assert store.fleet("nobody") == []


def test_a_heartbeat_is_not_an_event(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    seq, generation = store.latest_seq(), store.get_model("fraud").generation

    store.heartbeat(beat())

    assert (store.latest_seq(), store.get_model("fraud").generation) == (seq, generation)
    assert store.events()[-1].seq == seq


def test_times_read_back_in_utc(store: SqlStore) -> None:
    later = datetime(2026, 11, 1, 4, 14, tzinfo=timezone(timedelta(hours=2)))
    store.heartbeat(beat(started_at=later, seen_at=later))

    (only,) = store.fleet()

    assert only.seen_at == T0 and only.seen_at.tzinfo == UTC


def test_an_invalid_model_name_is_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput):
        store.fleet("Not A Name")


def test_only_a_heartbeat_is_recorded(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="must be a Heartbeat"):
        store.heartbeat(beat().model_dump())  # type: ignore[arg-type]


def test_pointer_moves_leave_the_fleet_alone(store: SqlStore) -> None:
    store.heartbeat(beat())
    register_versions(store, "fraud", 1)
    store.transition("fraud", 1, Stage.STAGING)

    assert store.fleet() == [beat()]


# ---------------------------------------------------------------- validation at the edge


@pytest.mark.parametrize(
    "changes",
    [
        {"resolver_id": "has space"},
        {"resolver_id": ""},
        {"model": "Fraud Detector"},
        {"region": "US East"},
        {"pid": -1},
        {"version": 0},
        {"seq": -1},
        {"seen_at": datetime(2026, 11, 1)},  # naive
        {"colour": "blue"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_malformed_heartbeat_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        beat(**changes)


def test_a_reason_is_kept_as_one_bounded_line() -> None:
    reason = beat(degraded=True, reason="download failed:\n  timeout\n" + "x" * 5000).reason

    assert reason is not None and "\n" not in reason
    assert reason.startswith("download failed: timeout x") and len(reason) == 2000
