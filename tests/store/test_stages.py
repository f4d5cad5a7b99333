"""Stage transitions: the allowed moves, illegal ones, and one Production version at a time."""

from __future__ import annotations

import itertools

import pytest
from release_facts import make_releasable

from registry.errors import Conflict, InvalidInput, NotFound
from registry.models import Stage
from registry.release.transitions import ALLOWED_TRANSITIONS
from registry.store.sql import SqlStore

from .support import production_versions, promote, register_versions, snapshot

N, S, P, A = Stage.NONE, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED
# Written out by hand from the issue, independently of registry.policy: None → Staging →
# Production → Archived, None/Staging may be archived directly, Archived only returns
# through rollback, and moving to the current stage changes nothing.
RULES = {
    (N, N): "no-op",
    (N, S): "moves",
    (N, P): "refused",
    (N, A): "moves",
    (S, N): "refused",
    (S, S): "no-op",
    (S, P): "moves",
    (S, A): "moves",
    (P, N): "refused",
    (P, S): "refused",
    (P, P): "no-op",
    (P, A): "moves",
    (A, N): "refused",
    (A, S): "refused",
    (A, P): "refused",
    (A, A): "no-op",
}
PAIRS = list(itertools.product(Stage, repeat=2))


def _put_in(store: SqlStore, stage: Stage) -> int:
    """Register version 1 of 'fraud' and bring it to ``stage`` by legal moves, with what
    the release gates ask recorded (so that only the stage machine decides here)."""
    register_versions(store, "fraud", 1)
    if stage == P:
        promote(store, "fraud", 1)
    elif stage != N:
        store.transition("fraud", 1, stage)
    make_releasable(store, "fraud", 1)
    return 1


def test_rules_cover_every_pair() -> None:
    assert set(RULES) == set(PAIRS)


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=lambda s: s.value)
def test_transition_follows_the_rules(store: SqlStore, current: Stage, target: Stage) -> None:
    version = _put_in(store, current)
    generation = store.get_model("fraud").generation
    before = snapshot(store)
    rule = RULES[current, target]
    assert (target in ALLOWED_TRANSITIONS[current]) == (rule == "moves")  # the policy oracle

    if rule == "refused":
        with pytest.raises(Conflict, match=f"from {current.value} to {target.value}"):
            store.transition("fraud", version, target)
        assert snapshot(store) == before
        return
    change = store.transition("fraud", version, target)

    assert store.get_version("fraud", version).stage == target
    if rule == "no-op":
        assert (change.generation, change.events) == (generation, ())
        assert snapshot(store) == before
    else:
        assert change.generation == generation + 1
        assert [(e.from_value, e.to_value) for e in change.events] == [
            (current.value, target.value)
        ]


def test_promoting_archives_the_previous_production_in_the_same_change(
    store: SqlStore,
) -> None:
    register_versions(store, "fraud", 2)
    promote(store, "fraud", 1)
    store.transition("fraud", 2, S)
    make_releasable(store, "fraud", 2)

    change = store.transition("fraud", 2, P, reason="better auc")

    assert [(e.version, e.from_value, e.to_value) for e in change.events] == [
        (1, "Production", "Archived"),
        (2, "Staging", "Production"),
    ]
    assert {e.generation for e in change.events} == {change.generation}
    assert {e.reason for e in change.events} == {"better auc"}
    assert change.events[1].seq == change.events[0].seq + 1
    assert store.get_version("fraud", 1).stage == A
    assert store.events(since=change.events[0].seq - 1) == list(change.events)


def test_there_is_never_more_than_one_production_version(store: SqlStore) -> None:
    register_versions(store, "fraud", 5)

    for version in range(1, 6):
        promote(store, "fraud", version)
        assert production_versions(store, "fraud") == [version]
        assert store.get_model("fraud").production == version


def test_several_versions_may_be_staged(store: SqlStore) -> None:
    register_versions(store, "fraud", 3)

    for version in (1, 3):
        store.transition("fraud", version, S)

    assert store.get_model("fraud").staging == (1, 3)


def test_stage_names_from_text_are_accepted(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    store.transition("fraud", 1, Stage.parse("staging"))

    assert store.get_version("fraud", 1).stage == S


@pytest.mark.parametrize(
    ("name", "version", "error"),
    [("fraud", 2, NotFound), ("nosuch", 1, NotFound), ("fraud", 0, InvalidInput)],
)
def test_transition_of_a_missing_version_changes_nothing(
    store: SqlStore, name: str, version: int, error: type[Exception]
) -> None:
    register_versions(store, "fraud", 1)
    before = snapshot(store)

    with pytest.raises(error):
        store.transition(name, version, S)

    assert snapshot(store) == before
