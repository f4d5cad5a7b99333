"""Holdout metrics on real models, and the release policy's staging gate judging them.

The gate itself is ``registry.release.gates.staging`` (tested exhaustively in
``tests/release/test_gates.py``); here it judges what ``evaluate_model`` measures,
with the rules the example workload is released under.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest

from registry.errors import InvalidInput
from registry.models import Stage
from registry.pipeline import data
from registry.pipeline.evaluation import evaluate_model
from registry.pipeline.training import TrainingResult
from registry.release import gates
from registry.release.decision import Decision
from registry.release.policy import ReleasePolicy

Splits = tuple[pd.DataFrame, pd.DataFrame]
RULES = [
    "auc >= 0.75",
    "recall >= 0.2",
    "latency_p99_ms <= 250",
    "auc >= production.auc - 0.02",
]
POLICY = ReleasePolicy.parse({"staging": RULES})
# Real models are judged on quality here; a busy test machine must not decide through
# latency (the latency rule is tested with plain numbers below).
QUALITY_ONLY = ReleasePolicy.parse({"staging": [r for r in RULES if "latency" not in r]})
PRODUCTION_VERSION = 1


def _staging(
    policy: ReleasePolicy,
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
) -> Decision[gates.StagingFacts]:
    facts = gates.StagingFacts(
        version=PRODUCTION_VERSION + 1,
        stage=Stage.NONE,
        metrics=candidate,
        metrics_source="evaluation check",
        production=None if production is None else PRODUCTION_VERSION,
        production_metrics=production,
        policy_version=1,
    )
    return gates.staging(policy, facts)


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
    decision = _staging(QUALITY_ONLY, good_metrics, production_metrics)

    assert decision.ok, decision.reasons
    assert decision.reasons == ()


def test_first_release_needs_only_the_floors(good_metrics: dict[str, float]) -> None:
    assert _staging(QUALITY_ONLY, good_metrics, None).ok


def test_degraded_model_is_refused(
    degraded: TrainingResult, splits: Splits, production_metrics: dict[str, float]
) -> None:
    metrics = _evaluate(degraded, splits[1])
    assert metrics["auc"] < 0.65

    decision = _staging(QUALITY_ONLY, metrics, production_metrics)

    assert not decision.ok
    assert any(r.startswith("auc ") and r.endswith("is not >= 0.75") for r in decision.reasons)
    assert any(
        "is not >= production.auc - 0.02 = " in r and f"production v{PRODUCTION_VERSION} has" in r
        for r in decision.reasons
    )


BASE: dict[str, Any] = {"auc": 0.90, "recall": 0.5, "latency_p99_ms": 5.0}


@pytest.mark.parametrize(
    ("candidate", "production", "reason"),
    [
        (
            {**BASE, "auc": 0.87},
            BASE,
            "auc 0.8700 is not >= production.auc - 0.02 = 0.8800 (production v1 has 0.9000)",
        ),
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
    decision = _staging(POLICY, candidate, production)

    assert not decision.ok
    assert reason in decision.reasons


def test_regression_within_tolerance_passes() -> None:
    tighter = ReleasePolicy.parse({"staging": [*RULES[:3], "auc >= production.auc - 0.01"]})

    assert _staging(POLICY, {**BASE, "auc": 0.885}, BASE).ok
    assert not _staging(tighter, {**BASE, "auc": 0.885}, BASE).ok


def test_holdout_must_have_both_classes_and_all_columns(
    good: TrainingResult, splits: Splits
) -> None:
    holdout = splits[1]
    with pytest.raises(InvalidInput, match="single class"):
        _evaluate(good, holdout[holdout[data.TARGET[0]] == 0])
    with pytest.raises(InvalidInput, match="lacks columns device"):
        _evaluate(good, holdout.drop(columns=["device"]))
