"""Evaluation on held-out data, and the None→Staging gate.

``evaluate_model`` loads a verified model file and measures it on the holdout:
AUC, average precision, F1, precision and recall at the model's own decision
threshold, per-subgroup AUC and recall (by country and device), and the p99
latency of single-row predictions. ``staging_gate`` is a pure decision: the
candidate meets the configured floors and does not regress against the current
Production version (evaluated on the same holdout) by more than a tolerance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from threadpoolctl import threadpool_limits

from registry.errors import InvalidInput
from registry.modelio import load_model
from registry.pipeline import data

SUBGROUPS = ("country", "device")
# A subgroup gets metrics only with enough of both classes to mean something.
MIN_SUBGROUP_CLASS = 10
LATENCY_ROUNDS = 50


def evaluate_model(
    model_path: str | Path, sha256: str, size: int, holdout_df: pd.DataFrame
) -> dict[str, float]:
    """Metrics of the model file (checked against sha256 and size) on ``holdout_df``.

    Keys: auc, average_precision, f1, precision, recall, error_rate, latency_p99_ms,
    holdout_rows, holdout_positives, and ``auc.<group>.<value>`` / ``recall.<group>.<value>``
    per subgroup. Every value is a finite float.
    """
    model = load_model(model_path, sha256=sha256, size=size)
    features, labels = _features_and_labels(holdout_df)
    with threadpool_limits(limits=1):  # small matrices: threads only add contention
        scores = model.predict_proba(features)[:, 1]
        predicted = model.predict(features)
        metrics = _classification(labels, scores, predicted)
        metrics["holdout_rows"] = float(len(labels))
        metrics["holdout_positives"] = float(labels.sum())
        for group in SUBGROUPS:
            metrics.update(_subgroup(holdout_df[group], labels, scores, predicted, group))
        metrics["latency_p99_ms"] = latency_p99_ms(model, features)
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        raise InvalidInput(f"evaluation produced non-finite metrics: {', '.join(bad)}")
    return metrics


def _features_and_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    names = data.feature_names()
    target = data.TARGET[0]
    missing = [c for c in [*names, target] if c not in frame.columns]
    if missing:
        raise InvalidInput(f"holdout lacks columns {', '.join(missing)}")
    labels = frame[target].to_numpy().astype(np.int64)
    if len(set(labels.tolist())) < 2:
        raise InvalidInput(f"holdout of {len(labels)} rows has a single class; need both 0 and 1")
    return frame[names], labels


def _classification(
    labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "error_rate": float(np.mean(predicted != labels)),
    }


def _subgroup(
    values: pd.Series, labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray, group: str
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    keys = values.astype(str).to_numpy()
    for value in sorted(set(keys.tolist())):
        mask = keys == value
        positives = int(labels[mask].sum())
        if positives < MIN_SUBGROUP_CLASS or int(mask.sum()) - positives < MIN_SUBGROUP_CLASS:
            continue
        metrics[f"auc.{group}.{value}"] = float(roc_auc_score(labels[mask], scores[mask]))
        metrics[f"recall.{group}.{value}"] = float(
            recall_score(labels[mask], predicted[mask], zero_division=0)
        )
    return metrics


def latency_p99_ms(model: Any, features: pd.DataFrame, rounds: int = LATENCY_ROUNDS) -> float:
    """p99 wall time of single-row ``predict_proba`` calls (what a request costs), in ms."""
    rows = [features.iloc[[i % len(features)]] for i in range(rounds + 3)]
    for row in rows[:3]:  # warm-up: first calls pay for lazy initialisation
        model.predict_proba(row)
    timings = []
    for row in rows[3:]:
        started = time.perf_counter()
        model.predict_proba(row)
        timings.append((time.perf_counter() - started) * 1000.0)
    return float(np.percentile(timings, 99))


# ---------------------------------------------------------------- the staging gate


@dataclass(frozen=True)
class GateThresholds:
    """Floors for the None→Staging gate and the tolerated regression against Production."""

    min_auc: float = 0.75
    min_recall: float = 0.20
    max_latency_p99_ms: float = 250.0
    max_regression: float = 0.02
    # Metrics compared with Production; AUC is threshold-free and stable across months.
    regression_metrics: tuple[str, ...] = ("auc",)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> GateThresholds:
        """Thresholds from configuration (unknown keys are refused)."""
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(f"unknown gate thresholds {', '.join(unknown)}")
        if "regression_metrics" in values:
            values["regression_metrics"] = tuple(values["regression_metrics"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["regression_metrics"] = list(self.regression_metrics)
        return result


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def staging_gate(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    thresholds: GateThresholds,
) -> GateResult:
    """Pass when the candidate clears every floor and, if Production exists, does not regress.

    ``production`` must be the Production version's metrics on the SAME holdout.
    Reasons name each refusal with the numbers that caused it.
    """
    reasons: list[str] = []
    floors: Sequence[tuple[str, float, str]] = (
        ("auc", thresholds.min_auc, ">="),
        ("recall", thresholds.min_recall, ">="),
        ("latency_p99_ms", thresholds.max_latency_p99_ms, "<="),
    )
    for metric, limit, op in floors:
        value = _metric(candidate, metric, reasons)
        if value is None:
            continue
        if (op == ">=" and value < limit) or (op == "<=" and value > limit):
            reasons.append(f"{metric} {value:.4f} is not {op} {limit:g}")
    if production is not None:
        for metric in thresholds.regression_metrics:
            value = _metric(candidate, metric, reasons)
            baseline = production.get(metric)
            if value is None or baseline is None:
                continue
            if value < baseline - thresholds.max_regression:
                reasons.append(
                    f"{metric} {value:.4f} regresses from production's {baseline:.4f} "
                    f"by more than {thresholds.max_regression:g}"
                )
    return GateResult(passed=not reasons, reasons=reasons)


def _metric(metrics: Mapping[str, float], name: str, reasons: list[str]) -> float | None:
    value = metrics.get(name)
    if value is None or not math.isfinite(value):
        message = f"candidate has no finite {name} metric"
        if message not in reasons:
            reasons.append(message)
        return None
    return float(value)
