"""``registry.diff.diff_versions``: a pure function of two versions.

(Kept with the CLI tests because ``modelreg diff`` is its one caller today.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from registry.diff import Change, MetricDelta, Retyped, diff_versions
from registry.models import ArtifactRef, Feature, ModelVersion, Stage


def version(number: int = 1, **fields: Any) -> ModelVersion:
    base: dict[str, Any] = {
        "name": "fraud-detector",
        "version": number,
        "stage": Stage.NONE,
        "artifact": ArtifactRef(uri="file:///a", sha256="a" * 64, size=1),
        "created_by": "alice@host",
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    return ModelVersion.model_validate({**base, **fields})


def features(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"features": [{"name": n, "dtype": d} for n, d in pairs]}


def test_a_version_against_itself_has_no_differences() -> None:
    v = version(
        metrics={"auc": 0.9},
        params={"depth": 3},
        signature=features(("amount", "float64")),
        lineage={"datasets": [{"name": "tx", "version": "1"}], "feature_pipeline": "fe-1"},
        environment={"python": "3.11.7", "packages": {"numpy": "2.0"}},
    )
    diff = diff_versions(v, v)
    assert not diff.artifact_changed
    assert diff.metrics == (MetricDelta(key="auc", a=0.9, b=0.9, delta=0.0),)
    assert diff.params.empty and diff.tags.empty
    assert diff.signature.empty and diff.lineage.empty and diff.environment.empty


def test_metric_deltas_cover_keys_on_either_side_sorted() -> None:
    diff = diff_versions(
        version(metrics={"f1": 0.7, "auc": 0.9}), version(metrics={"auc": 0.8, "recall": 0.5})
    )
    assert [m.key for m in diff.metrics] == ["auc", "f1", "recall"]
    assert diff.metrics[0].delta == pytest.approx(-0.1)
    assert diff.metrics[1] == MetricDelta(key="f1", a=0.7, b=None, delta=None)
    assert diff.metrics[2] == MetricDelta(key="recall", a=None, b=0.5, delta=None)


def test_features_added_removed_and_retyped() -> None:
    a = version(signature=features(("amount", "float64"), ("country", "category")))
    b = version(signature=features(("amount", "float32"), ("hour", "int64")))
    s = diff_versions(a, b).signature
    assert s.added == (Feature(name="hour", dtype="int64"),)
    assert s.removed == (Feature(name="country", dtype="category"),)
    assert s.retyped == (Retyped(name="amount", a="float64", b="float32"),)
    assert not s.reordered


def test_reordering_of_common_features_is_reported_with_both_orders() -> None:
    a = version(signature=features(("a", "int64"), ("b", "int64"), ("c", "int64")))
    b = version(signature=features(("c", "int64"), ("a", "int64"), ("b", "int64")))
    s = diff_versions(a, b).signature
    assert s.reordered
    assert (s.order_a, s.order_b) == (("a", "b", "c"), ("c", "a", "b"))


def test_an_added_feature_alone_is_not_a_reorder() -> None:
    a = version(signature=features(("a", "int64"), ("b", "int64")))
    b = version(signature=features(("a", "int64"), ("x", "int64"), ("b", "int64")))
    assert not diff_versions(a, b).signature.reordered


def test_target_and_preprocessing_changes() -> None:
    a = version(signature={**features(("a", "int64")), "target": {"name": "y", "dtype": "int64"}})
    b = version(
        signature={
            **features(("a", "int64")),
            "target": {"name": "y", "dtype": "bool"},
            "preprocessing_version": "fe-2",
        }
    )
    s = diff_versions(a, b).signature
    assert s.target == Change(a="y (int64)", b="y (bool)")
    assert s.preprocessing_version == Change(a=None, b="fe-2")


def test_a_missing_signature_counts_as_no_features() -> None:
    s = diff_versions(version(), version(signature=features(("a", "int64")))).signature
    assert s.added == (Feature(name="a", dtype="int64"),)
    assert not s.removed


def test_params_changed_added_and_removed() -> None:
    p = diff_versions(
        version(params={"depth": 3, "lr": 0.1, "old": "x"}),
        version(params={"depth": 4, "lr": 0.1, "new": True}),
    ).params
    assert p.changed == {"depth": Change(a=3, b=4)}
    assert p.added == {"new": True}
    assert p.removed == {"old": "x"}


def test_a_param_that_turned_from_1_to_true_changed() -> None:
    assert (
        "flag"
        in diff_versions(version(params={"flag": 1}), version(params={"flag": True})).params.changed
    )


def test_datasets_added_removed_and_changed_under_the_same_version() -> None:
    a = version(
        lineage={
            "datasets": [
                {"name": "tx", "version": "1", "rows": 10},
                {"name": "users", "version": "7"},
            ]
        }
    )
    b = version(
        lineage={
            "datasets": [
                {"name": "tx", "version": "1", "rows": 12},
                {"name": "tx", "version": "2"},
            ]
        }
    )
    lin = diff_versions(a, b).lineage
    assert lin.datasets_added == ("tx@2",)
    assert lin.datasets_removed == ("users@7",)
    assert lin.datasets_changed == ("tx@1",)


def test_feature_pipeline_and_code_changes() -> None:
    a = version(lineage={"feature_pipeline": "fe-1", "code": {"commit": "abcd", "branch": "main"}})
    b = version(lineage={"feature_pipeline": "fe-2", "code": {"commit": "ef01", "branch": "main"}})
    lin = diff_versions(a, b).lineage
    assert lin.feature_pipeline == Change(a="fe-1", b="fe-2")
    assert lin.code_commit == Change(a="abcd", b="ef01")
    assert lin.code_branch is None
    assert lin.code_repository is None


def test_environment_python_and_package_versions() -> None:
    env = diff_versions(
        version(environment={"python": "3.11.7", "packages": {"numpy": "2.0", "scipy": "1.0"}}),
        version(environment={"python": "3.11.9", "packages": {"numpy": "2.1", "pandas": "3.1"}}),
    ).environment
    assert env.python == Change(a="3.11.7", b="3.11.9")
    assert env.packages.changed == {"numpy": Change(a="2.0", b="2.1")}
    assert env.packages.added == {"pandas": "3.1"}
    assert env.packages.removed == {"scipy": "1.0"}


def test_artifact_change_and_summaries() -> None:
    b = version(2, artifact={"uri": "file:///b", "sha256": "b" * 64, "size": 2, "format": "onnx"})
    diff = diff_versions(version(1), b)
    assert diff.artifact_changed
    assert (diff.a.version, diff.b.version, diff.b.format) == (1, 2, "onnx")


def test_the_diff_is_frozen() -> None:
    diff = diff_versions(version(), version())
    with pytest.raises(ValueError, match="frozen"):
        diff.artifact_changed = True  # type: ignore[misc]
