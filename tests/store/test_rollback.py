"""Rollback: one pointer flip back to the version that served before."""

from __future__ import annotations

import pytest

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import Stage
from registry.store.sql import SqlStore

from .support import (
    assert_only_a_refusal_recorded,
    production_versions,
    promote,
    register_versions,
    serve_in_turn,
    snapshot,
)


def _replay(store: SqlStore, steps: str) -> None:
    """Run a timeline written as space-separated steps on model 'fraud':
    ``pN`` promote vN, ``aN`` archive vN, ``rb`` roll back, ``rbN`` roll back to vN.
    Registers every version the promotions name first."""
    promoted = [int(step[1:]) for step in steps.split() if step.startswith("p")]
    register_versions(store, "fraud", max(promoted, default=0))
    for step in steps.split():
        if step.startswith("p"):
            promote(store, "fraud", int(step[1:]))
        elif step.startswith("a"):
            store.transition("fraud", int(step[1:]), Stage.ARCHIVED)
        elif step == "rb":
            store.rollback("fraud", reason="test")
        else:
            store.rollback("fraud", to=int(step[2:]), reason="test")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("p1 p2", 1),
        ("p1 p2 p3", 2),
        ("p1 p2 p3 rb", 1),  # skips v3: a rollback moved away from it
        ("p1 p2 p3 rb1", 2),
        ("p1 p2 rb p3", 1),  # v2 was rolled back away from
        ("p1 p2 p3 rb rb3", 1),  # v3 came back, but v2 was rolled away from too
        ("p1 p2 a2", 2),  # nothing serves: the last version that did comes back
        ("p1 p2 p3 a3", 3),
    ],
)
def test_rollback_picks_the_previous_good_version(
    store: SqlStore, steps: str, expected: int
) -> None:
    _replay(store, steps)

    change = store.rollback("fraud", reason="bad p99")

    assert change.events[0].to_value == str(expected)
    assert production_versions(store, "fraud") == [expected]
    assert store.resolve("fraud", "production") == expected


def test_rollback_archives_the_current_version(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 3)

    store.rollback("fraud", reason="bad p99")

    stages = {v.version: v.stage for v in store.list_versions("fraud")}
    assert stages == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION, 3: Stage.ARCHIVED}


def test_rollback_writes_exactly_one_event(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 3)
    last = store.events()[-1].seq
    generation = store.get_model("fraud").generation

    change = store.rollback("fraud", reason="p99 latency doubled")

    (event,) = store.events(since=last)
    assert change.events == (event,)
    assert (event.kind, event.version, event.from_value, event.to_value) == (
        "rollback",
        2,
        "3",
        "2",
    )
    assert (event.actor, event.reason, event.generation) == (
        "tester",
        "p99 latency doubled",
        generation + 1,
    )
    assert change.generation == generation + 1


@pytest.mark.parametrize("to", [1, 2])
def test_rollback_to_a_version_that_served(store: SqlStore, to: int) -> None:
    serve_in_turn(store, "fraud", 3)

    store.rollback("fraud", to=to, reason="known good")

    assert production_versions(store, "fraud") == [to]
    assert store.get_version("fraud", 3).stage == Stage.ARCHIVED


@pytest.mark.parametrize(
    ("to", "why"),
    [(4, "never served"), (5, "never served"), (99, "never served"), (3, "already")],
    ids=["staged", "registered", "missing", "current"],
)
def test_rollback_to_a_version_that_cannot_come_back_is_refused(
    store: SqlStore, to: int, why: str
) -> None:
    serve_in_turn(store, "fraud", 3)
    register_versions(store, "fraud", 2)
    store.transition("fraud", 4, Stage.STAGING)
    before = snapshot(store)

    with pytest.raises(GateRefused, match=why) as refused:
        store.rollback("fraud", to=to, reason="try")

    assert refused.value.reasons
    refusal = assert_only_a_refusal_recorded(before, snapshot(store), "rollback")
    assert refusal.reason == "try" and refusal.version is None


@pytest.mark.parametrize(
    "steps",
    ["", "p1", "p1 p2 rb"],
    ids=["never-served", "only-one-served", "rolled-back-from-all"],
)
def test_nothing_to_roll_back_to_is_refused(store: SqlStore, steps: str) -> None:
    _replay(store, steps)
    register_versions(store, "fraud", 1)  # registered, never served: not a target
    before = snapshot(store)

    with pytest.raises(GateRefused, match="no earlier Production version"):
        store.rollback("fraud", reason="again")

    assert_only_a_refusal_recorded(before, snapshot(store), "rollback")


@pytest.mark.parametrize("reason", ["", "   ", "\n"], ids=repr)
def test_rollback_requires_a_reason(store: SqlStore, reason: str) -> None:
    serve_in_turn(store, "fraud", 2)
    before = snapshot(store)

    with pytest.raises(InvalidInput, match="reason"):
        store.rollback("fraud", reason=reason)

    assert snapshot(store) == before


def test_rollback_of_a_missing_model_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.rollback("nosuch", reason="r")


def test_rollback_with_a_stale_generation_is_a_conflict(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 3)
    stale = store.get_model("fraud").generation - 1
    before = snapshot(store)

    with pytest.raises(Conflict):
        store.rollback("fraud", expected_generation=stale, reason="r")

    assert snapshot(store) == before


def test_stale_rollback_is_a_conflict_even_when_the_target_now_serves(
    store: SqlStore,
) -> None:
    serve_in_turn(store, "fraud", 2)
    seen = store.get_model("fraud").generation
    store.rollback("fraud", to=1, reason="someone else was faster")

    before = snapshot(store)

    with pytest.raises(Conflict, match="stale generation"):
        store.rollback("fraud", to=1, expected_generation=seen, reason="me too")

    assert snapshot(store) == before


def test_rollback_moves_no_alias(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 2)
    store.set_aliases("fraud", {"champion": 2})

    store.rollback("fraud", reason="r")

    assert store.get_model("fraud").aliases == {"champion": 2}


def test_promote_after_rollback_archives_the_restored_version(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 2)
    store.rollback("fraud", reason="r")
    register_versions(store, "fraud", 1)

    promote(store, "fraud", 3)

    assert production_versions(store, "fraud") == [3]
    assert store.get_version("fraud", 1).stage == Stage.ARCHIVED
