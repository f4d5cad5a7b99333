"""Evaluation on held-out data.

``evaluate_model`` loads a verified model file and measures it on the holdout:
AUC, average precision, F1, precision and recall at the model's own decision
threshold, per-subgroup AUC and recall (by country and device), and the p99
latency of single-row predictions. Whether those numbers are good enough is the
release policy's call (``registry.release.gates.staging``), not this module's.
"""

from __future__ import annotations

import math
import time
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
