"""Every pointer change is a compare-and-swap on the model's generation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from release_facts import make_releasable

from registry.errors import Conflict
from registry.models import PointerChange, Stage
from registry.store.sql import SqlStore

from .support import promote, register_versions, snapshot

PointerCall = Callable[[SqlStore, int | None], PointerChange]

# Each call is legal in the state ``served_twice`` leaves, so only the generation decides.
POINTER_CALLS: dict[str, PointerCall] = {
    "stage": lambda s, g: s.transition("fraud", 4, Stage.STAGING, expected_generation=g),
    "promote": lambda s, g: s.transition("fraud", 3, Stage.PRODUCTION, expected_generation=g),
    "archive": lambda s, g: s.transition("fraud", 2, Stage.ARCHIVED, expected_generation=g),
    "alias": lambda s, g: s.set_aliases("fraud", {"stable": 3}, expected_generation=g),
    "alias-delete": lambda s, g: s.set_aliases("fraud", {"stable": None}, expected_generation=g),
    "alias-swap": lambda s, g: s.set_aliases(
        "fraud", {"stable": 1, "challenger": 2}, expected_generation=g
    ),
    "protected-alias": lambda s, g: s.set_aliases("fraud", {"champion": 3}, expected_generation=g),
    "forced-alias-delete": lambda s, g: s.set_aliases(
        "fraud", {"champion": None}, expected_generation=g, reason="retire", force=True
    ),
    "rollback": lambda s, g: s.rollback("fraud", expected_generation=g, reason="bad p99"),
    "rollback-to": lambda s, g: s.rollback("fraud", to=1, expected_generation=g, reason="r"),
}


@pytest.fixture
def served_twice(store: SqlStore) -> SqlStore:
    """fraud v1 Archived (served), v2 Production, v3 Staging and releasable, v4 None;
    stable → v2, challenger → v1, and the protected champion → v2."""
    register_versions(store, "fraud", 4)
    promote(store, "fraud", 1)
    promote(store, "fraud", 2)
    store.transition("fraud", 3, Stage.STAGING)
    make_releasable(store, "fraud", 3)
    store.set_aliases("fraud", {"stable": 2, "challenger": 1, "champion": 2})
    return store


@pytest.mark.parametrize("call", POINTER_CALLS.values(), ids=POINTER_CALLS.keys())
def test_stale_generation_is_a_conflict_and_changes_nothing(
    served_twice: SqlStore, call: PointerCall
) -> None:
    stale = served_twice.get_model("fraud").generation - 1
    before = snapshot(served_twice)

    with pytest.raises(Conflict, match="stale generation"):
        call(served_twice, stale)

    assert snapshot(served_twice) == before


@pytest.mark.parametrize("offset", [1, 100], ids=["next", "far-ahead"])
def test_a_generation_from_the_future_is_a_conflict(served_twice: SqlStore, offset: int) -> None:
    ahead = served_twice.get_model("fraud").generation + offset
    before = snapshot(served_twice)

    with pytest.raises(Conflict, match="stale generation"):
        POINTER_CALLS["promote"](served_twice, ahead)

    assert snapshot(served_twice) == before


@pytest.mark.parametrize("call", POINTER_CALLS.values(), ids=POINTER_CALLS.keys())
def test_current_generation_succeeds_and_adds_exactly_one(
    served_twice: SqlStore, call: PointerCall
) -> None:
    generation = served_twice.get_model("fraud").generation
    last_seq = served_twice.events()[-1].seq

    change = call(served_twice, generation)

    assert change.generation == generation + 1
    assert served_twice.get_model("fraud").generation == generation + 1
    assert change.events
    assert {e.generation for e in change.events} == {generation + 1}
    assert served_twice.events(since=last_seq) == list(change.events)


@pytest.mark.parametrize("kind", ["promote", "alias", "protected-alias", "rollback"])
def test_without_expected_generation_the_change_applies(served_twice: SqlStore, kind: str) -> None:
    generation = served_twice.get_model("fraud").generation

    assert POINTER_CALLS[kind](served_twice, None).generation == generation + 1


def test_generations_are_per_model(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    register_versions(store, "churn", 1)
    store.transition("fraud", 1, Stage.STAGING)

    change = store.transition("churn", 1, Stage.STAGING, expected_generation=0)

    assert change.generation == 1
    assert store.get_model("fraud").generation == 1


def test_registration_and_tags_leave_the_generation_alone(served_twice: SqlStore) -> None:
    generation = served_twice.get_model("fraud").generation

    register_versions(served_twice, "fraud", 1)
    served_twice.update_version("fraud", 1, tags={"note": "x"}, description="d")

    assert served_twice.get_model("fraud").generation == generation


# Calls whose change is already in place (v2 serves, stable → v2): with the current
# generation they change nothing; with a stale one they are refused all the same,
# because the caller decided on a view of the model that is no longer true.
ALREADY_IN_PLACE: dict[str, PointerCall] = {
    "same-stage": lambda s, g: s.transition("fraud", 2, Stage.PRODUCTION, expected_generation=g),
    "same-alias": lambda s, g: s.set_aliases("fraud", {"stable": 2}, expected_generation=g),
}


@pytest.mark.parametrize("call", ALREADY_IN_PLACE.values(), ids=ALREADY_IN_PLACE.keys())
def test_a_change_already_in_place_is_a_no_op_only_for_a_current_caller(
    served_twice: SqlStore, call: PointerCall
) -> None:
    generation = served_twice.get_model("fraud").generation

    assert call(served_twice, generation).events == ()
    with pytest.raises(Conflict, match="stale generation"):
        call(served_twice, generation - 1)
    assert served_twice.get_model("fraud").generation == generation
