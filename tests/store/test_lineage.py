"""Lineage impact: which versions used a dataset, pipeline or commit, and which serve now."""

from __future__ import annotations

from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.models import Stage, VersionCreate
from registry.store.sql import SqlStore

from .support import artifact, promote


def _meta(datasets: list[str], pipeline: str, commit: str) -> VersionCreate:
    return VersionCreate.parse(
        {
            "lineage": {
                "datasets": [
                    {"name": d.split("@")[0], "version": d.split("@")[1]} for d in datasets
                ],
                "feature_pipeline": pipeline,
                "code": {"repository": "git@example.com:ml.git", "commit": commit},
            }
        }
    )


# (model, datasets, feature pipeline, code commit)
VERSIONS = [
    ("fraud", ["transactions@2026-09-01"], "fe-2.2", "9f1c2ab"),
    ("fraud", ["transactions@2026-10-01", "customers@v3"], "fe-2.3", "abcdef1234"),
    ("fraud", ["transactions@2026-11-01"], "fe-2.3", "ABCDEF9999"),
    ("churn", ["customers@v3"], "fe-1.0", "1234abcd"),
    ("churn", ["customers@v4"], "fe-1.0", "1234abce"),
]


def _train(store: SqlStore) -> SqlStore:
    """Register VERSIONS; fraud v2 and churn v1 serve, fraud v3 is staged."""
    for i, (name, datasets, pipeline, commit) in enumerate(VERSIONS):
        store.register(name, artifact(bytes([i])), _meta(datasets, pipeline, commit))
    promote(store, "fraud", 2)
    promote(store, "churn", 1)
    store.transition("fraud", 3, Stage.STAGING)
    return store


@pytest.fixture(scope="module")
def trained(module_store: SqlStore) -> SqlStore:
    """Shared by the read-only tests below."""
    return _train(module_store)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"dataset": "transactions"}, {("fraud", 1), ("fraud", 2), ("fraud", 3)}),
        ({"dataset": "transactions@2026-10-01"}, {("fraud", 2)}),
        ({"dataset": "transactions@2026-09-15..2026-10-31"}, {("fraud", 2)}),
        ({"dataset": "transactions@2026-09-01..2026-10-01"}, {("fraud", 1), ("fraud", 2)}),
        ({"dataset": "transactions@..2026-10-01"}, {("fraud", 1), ("fraud", 2)}),
        ({"dataset": "transactions@2026-10-01.."}, {("fraud", 2), ("fraud", 3)}),
        ({"dataset": "customers"}, {("fraud", 2), ("churn", 1), ("churn", 2)}),
        ({"dataset": "customers@v3"}, {("fraud", 2), ("churn", 1)}),
        ({"dataset": "nosuch"}, set()),
        ({"dataset": "transactions@2027-01-01"}, set()),
        ({"pipeline": "fe-2.3"}, {("fraud", 2), ("fraud", 3)}),
        ({"pipeline": "fe-1.0"}, {("churn", 1), ("churn", 2)}),
        ({"pipeline": "fe-2"}, set()),  # a pipeline version is matched exactly
        ({"commit": "abcdef"}, {("fraud", 2), ("fraud", 3)}),
        ({"commit": "ABCDEF"}, {("fraud", 2), ("fraud", 3)}),
        ({"commit": "9f1c2ab"}, {("fraud", 1)}),
        ({"commit": "1234abc"}, {("churn", 1), ("churn", 2)}),
        ({"commit": "1234abcd"}, {("churn", 1)}),
        ({"commit": "ffff"}, set()),
    ],
    ids=lambda q: str(q) if isinstance(q, dict) else "",
)
def test_lineage_impact_finds_the_versions(
    trained: SqlStore, query: dict[str, str], expected: set[tuple[str, int]]
) -> None:
    hits = trained.lineage_impact(**query)

    assert {(h.name, h.version) for h in hits} == expected
    assert len(hits) == len(expected)


def test_lineage_impact_says_which_serve(trained: SqlStore) -> None:
    hits = trained.lineage_impact(dataset="customers")

    assert [(h.name, h.version, h.stage, h.in_production, h.live) for h in hits] == [
        ("churn", 1, Stage.PRODUCTION, True, True),
        ("fraud", 2, Stage.PRODUCTION, True, True),
        ("churn", 2, Stage.NONE, False, False),
    ]


def test_lineage_hits_carry_their_lineage(trained: SqlStore) -> None:
    (hit,) = trained.lineage_impact(dataset="transactions@2026-10-01")

    assert hit.datasets == ("customers@v3", "transactions@2026-10-01")
    assert (hit.feature_pipeline, hit.code_commit) == ("fe-2.3", "abcdef1234")
    assert hit.created_at == trained.get_version("fraud", 2).created_at


def test_lineage_impact_follows_a_rollback(store: SqlStore) -> None:
    promote(_train(store), "fraud", 3)
    store.rollback("fraud", reason="bad p99")

    serving = [h.version for h in store.lineage_impact(pipeline="fe-2.3") if h.in_production]

    assert serving == [2]


@pytest.mark.parametrize(
    "query",
    [
        {"commit": "xyz"},
        {"commit": "abc"},  # shorter than 4
        {"commit": "9f1c2ab!"},
        {"commit": "9f1c%"},
        {"commit": ""},
        {"dataset": "@v1"},
        {"dataset": "transactions@.."},
        {"dataset": ""},
        {},
        {"dataset": "transactions", "pipeline": "fe-2.3"},
    ],
    ids=str,
)
def test_bad_lineage_queries_are_invalid_input(trained: SqlStore, query: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        trained.lineage_impact(**query)
