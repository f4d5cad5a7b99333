"""resolve(): a number, a stage, 'latest' or an alias to a version number (``stable`` is
an unprotected alias: no gate stands in the way)."""

from __future__ import annotations

import pytest

from registry.errors import NotFound
from registry.models import Stage
from registry.store.sql import SqlStore

from .support import promote, register_versions


def _line_up(store: SqlStore) -> SqlStore:
    """fraud: v1 Archived, v2 Production, v3 and v4 Staging, v5 None; stable → v3."""
    register_versions(store, "fraud", 5)
    promote(store, "fraud", 1)
    promote(store, "fraud", 2)
    store.transition("fraud", 3, Stage.STAGING)
    store.transition("fraud", 4, Stage.STAGING)
    store.set_aliases("fraud", {"stable": 3})
    return store


@pytest.fixture(scope="module")
def lineup(module_store: SqlStore) -> SqlStore:
    """Shared by the read-only tests below."""
    return _line_up(module_store)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (1, 1),
        (5, 5),
        ("4", 4),
        ("production", 2),
        ("Production", 2),  # stage names in any case, as the CLI's --stage takes them
        ("STAGING", 4),
        ("staging", 4),  # the newest of several
        ("archived", 1),
        ("none", 5),
        ("latest", 5),
        ("Latest", 5),
        ("stable", 3),
    ],
    ids=repr,
)
def test_resolve(lineup: SqlStore, ref: str | int, expected: int) -> None:
    assert lineup.resolve("fraud", ref) == expected


@pytest.mark.parametrize("ref", [6, "99", 0, "nosuch", "challenger", ""], ids=repr)
def test_unknown_ref_is_not_found(lineup: SqlStore, ref: str | int) -> None:
    with pytest.raises(NotFound):
        lineup.resolve("fraud", ref)


def test_production_of_a_model_with_nothing_serving_is_not_found(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)

    with pytest.raises(NotFound):
        store.resolve("fraud", "production")


@pytest.mark.parametrize("ref", [1, "latest", "production"], ids=repr)
def test_resolve_on_a_missing_model_is_not_found(lineup: SqlStore, ref: str | int) -> None:
    with pytest.raises(NotFound):
        lineup.resolve("churn", ref)


def test_resolve_follows_a_rollback(store: SqlStore) -> None:
    _line_up(store).rollback("fraud", reason="bad p99")

    assert store.resolve("fraud", "production") == 1


def test_resolve_follows_an_alias_move(store: SqlStore) -> None:
    _line_up(store).set_aliases("fraud", {"stable": 4})

    assert store.resolve("fraud", "stable") == 4
