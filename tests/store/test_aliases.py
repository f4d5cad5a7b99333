"""Aliases: named pointers, moved several at a time in one atomic change.

The aliases here are unprotected (``stable``, ``challenger``): how protected ones pass
the promotion gate is in ``test_gates_aliases``."""

from __future__ import annotations

import pytest

from registry.errors import NotFound
from registry.store.sql import SqlStore

from .support import register_versions, snapshot


@pytest.fixture
def three(store: SqlStore) -> SqlStore:
    """fraud v1..v3 with stable → v1 and challenger → v2."""
    register_versions(store, "fraud", 3)
    store.set_aliases("fraud", {"stable": 1, "challenger": 2})
    return store


def test_aliases_show_on_the_model_and_its_versions(three: SqlStore) -> None:
    assert three.get_model("fraud").aliases == {"challenger": 2, "stable": 1}
    assert [(v.version, v.aliases) for v in three.list_versions("fraud")] == [
        (3, ()),
        (2, ("challenger",)),
        (1, ("stable",)),
    ]


def test_swapping_two_aliases_is_one_change(three: SqlStore) -> None:
    generation = three.get_model("fraud").generation

    change = three.set_aliases("fraud", {"stable": 2, "challenger": 1}, reason="swap")

    assert three.get_model("fraud").aliases == {"stable": 2, "challenger": 1}
    assert change.generation == generation + 1
    assert sorted((e.subject, e.from_value, e.to_value) for e in change.events) == [
        ("challenger", "2", "1"),
        ("stable", "1", "2"),
    ]


def test_two_aliases_may_name_one_version(three: SqlStore) -> None:
    three.set_aliases("fraud", {"challenger": 1})

    assert three.get_version("fraud", 1).aliases == ("challenger", "stable")


@pytest.mark.parametrize(
    "moves",
    [
        {"stable": 2, "challenger": 99},
        {"challenger": 99, "stable": 2},
        {"stable": 3, "shadow": 3, "canary": 42},
    ],
    ids=["missing-last", "missing-first", "missing-among-new"],
)
def test_a_move_to_a_missing_version_applies_none_of_the_moves(
    three: SqlStore, moves: dict[str, int]
) -> None:
    before = snapshot(three)

    with pytest.raises(NotFound):
        three.set_aliases("fraud", moves)

    assert snapshot(three) == before


def test_none_deletes_an_alias(three: SqlStore) -> None:
    change = three.set_aliases("fraud", {"stable": None})

    assert three.get_model("fraud").aliases == {"challenger": 2}
    assert [(e.kind, e.subject, e.from_value, e.to_value) for e in change.events] == [
        ("alias", "stable", "1", None)
    ]


@pytest.mark.parametrize(
    "moves", [{"nosuch": None}, {"stable": 3, "nosuch": None}], ids=["alone", "with-a-move"]
)
def test_deleting_an_alias_that_does_not_exist_is_not_found(
    three: SqlStore, moves: dict[str, int | None]
) -> None:
    before = snapshot(three)

    with pytest.raises(NotFound, match="nosuch"):
        three.set_aliases("fraud", moves)

    assert snapshot(three) == before


def test_moving_an_alias_to_where_it_points_changes_nothing(three: SqlStore) -> None:
    generation = three.get_model("fraud").generation
    before = snapshot(three)

    change = three.set_aliases("fraud", {"stable": 1})

    assert (change.generation, change.events) == (generation, ())
    assert snapshot(three) == before


def test_aliases_of_a_missing_model_are_not_found(three: SqlStore) -> None:
    with pytest.raises(NotFound):
        three.set_aliases("nosuch", {"stable": 1})


def test_aliases_are_per_model(three: SqlStore) -> None:
    register_versions(three, "churn", 1)

    three.set_aliases("churn", {"stable": 1})

    assert three.get_model("fraud").aliases["stable"] == 1
    assert three.resolve("churn", "stable") == 1
