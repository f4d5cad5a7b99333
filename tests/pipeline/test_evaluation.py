"""Holdout metrics and the None→Staging gate, on real models and on plain numbers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from registry.errors import InvalidInput
from registry.pipeline import data
from registry.pipeline.evaluation import (
    GateThresholds,
    evaluate_model,
    staging_gate,
)
from registry.pipeline.training import TrainingResult

Splits = tuple[pd.DataFrame, pd.DataFrame]
# Real models are judged on quality here; a busy test machine must not decide through
# latency (the latency floor is tested with plain numbers below).
QUALITY_ONLY = GateThresholds(max_latency_p99_ms=float("inf"))


def _evaluate(result: TrainingResult, holdout: pd.DataFrame) -> dict[str, float]:
    return evaluate_model(result.model_path, result.sha256, result.size, holdout)


@pytest.fixture(scope="module")
def good_metrics(good: TrainingResult, splits: Splits) -> dict[str, float]:
    return _evaluate(good, splits[1])


@pytest.fixture(scope="module")
def production_metrics(previous_month_model: TrainingResult, splits: Splits) -> dict[str, float]:
    return _evaluate(previous_month_model, splits[1])


def test_metrics_are_finite_floats_with_subgroups(good_metrics: dict[str, float]) -> None:
    for key in ("auc", "average_precision", "f1", "precision", "recall", "latency_p99_ms"):
        assert key in good_metrics
    assert all(isinstance(v, float) and math.isfinite(v) for v in good_metrics.values())
    assert good_metrics["holdout_rows"] == 4_000
    assert {"auc.country.US", "recall.country.US", "auc.device.mobile"} <= set(good_metrics)
    assert all(k.split(".")[1] in ("country", "device") for k in good_metrics if "." in k)


def test_a_trained_model_has_real_signal(good_metrics: dict[str, float]) -> None:
    assert good_metrics["auc"] > 0.85
    assert good_metrics["recall"] > 0.2
    assert good_metrics["auc.country.US"] > 0.75


def test_good_candidate_passes_against_last_months_production(
    good_metrics: dict[str, float], production_metrics: dict[str, float]
) -> None:
    result = staging_gate(good_metrics, production_metrics, QUALITY_ONLY)
    assert result.passed, result.reasons
    assert result.to_dict() == {"passed": True, "reasons": []}


def test_first_release_needs_only_the_floors(good_metrics: dict[str, float]) -> None:
    assert staging_gate(good_metrics, None, QUALITY_ONLY).passed


def test_degraded_model_is_refused(
    degraded: TrainingResult, splits: Splits, production_metrics: dict[str, float]
) -> None:
    metrics = _evaluate(degraded, splits[1])
    assert metrics["auc"] < 0.65

    result = staging_gate(metrics, production_metrics, QUALITY_ONLY)

    assert not result.passed
    assert any(r.startswith("auc ") and "is not >= 0.75" in r for r in result.reasons)
    assert any("regresses from production" in r for r in result.reasons)


BASE: dict[str, Any] = {"auc": 0.90, "recall": 0.5, "latency_p99_ms": 5.0}


@pytest.mark.parametrize(
    ("candidate", "production", "reason"),
    [
        ({**BASE, "auc": 0.87}, BASE, "auc 0.8700 regresses from production's 0.9000"),
        ({**BASE, "recall": 0.1}, None, "recall 0.1000 is not >= 0.2"),
        ({**BASE, "latency_p99_ms": 900.0}, None, "latency_p99_ms 900.0000 is not <= 250"),
        ({"recall": 0.5, "latency_p99_ms": 1.0}, None, "candidate has no finite auc metric"),
        ({**BASE, "auc": float("nan")}, None, "candidate has no finite auc metric"),
    ],
    ids=["regression", "recall-floor", "latency", "missing-metric", "nan-metric"],
)
def test_gate_refusals_name_the_numbers(
    candidate: dict[str, float], production: dict[str, float] | None, reason: str
) -> None:
    result = staging_gate(candidate, production, GateThresholds())
    assert not result.passed
    assert any(r.startswith(reason) for r in result.reasons), result.reasons


def test_regression_within_tolerance_passes() -> None:
    assert staging_gate({**BASE, "auc": 0.885}, BASE, GateThresholds()).passed
    assert not staging_gate(
        {**BASE, "auc": 0.885}, BASE, GateThresholds(max_regression=0.01)
    ).passed


def test_thresholds_come_from_configuration() -> None:
    thresholds = GateThresholds.from_mapping({"min_auc": 0.8, "regression_metrics": ["auc", "f1"]})
    assert thresholds.min_auc == 0.8
    assert thresholds.to_dict()["regression_metrics"] == ["auc", "f1"]
    assert GateThresholds.from_mapping(None) == GateThresholds()
    with pytest.raises(InvalidInput, match="unknown gate thresholds min_aoc"):
        GateThresholds.from_mapping({"min_aoc": 0.8})


def test_holdout_must_have_both_classes_and_all_columns(
    good: TrainingResult, splits: Splits
) -> None:
    holdout = splits[1]
    with pytest.raises(InvalidInput, match="single class"):
        _evaluate(good, holdout[holdout[data.TARGET[0]] == 0])
    with pytest.raises(InvalidInput, match="lacks columns device"):
        _evaluate(good, holdout.drop(columns=["device"]))
