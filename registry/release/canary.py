"""The canary: candidate and Production on the same live-like traffic, one pre-declared test.

Both models score every transaction of ``traffic_df`` (shadow replay with labels
that arrived later). The decision is a one-sided non-inferiority test on the
error rate (share of wrong decisions at each model's own threshold):

    H0: error_candidate - error_production >= margin   (the candidate is worse)
    H1: error_candidate - error_production <  margin

with a two-proportion z statistic on Agresti-Caffo adjusted rates (one success and
one failure added to each arm, so the statistic stays finite when an arm makes no
error). The candidate passes when both arms have at least ``min_samples`` rows and
p < alpha. Alpha, margin and the minimum sample size are fixed before the replay
and stored with the evidence. The arms share their rows, which makes this
unpaired test conservative.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from registry.errors import InvalidInput
from registry.modelio import load_model
from registry.pipeline import data

TEST_NAME = "one-sided non-inferiority z-test on error rate (Agresti-Caffo)"


@dataclass(frozen=True)
class CanaryEvidence:
    passed: bool
    decision: str
    n_candidate: int
    n_production: int
    error_candidate: float
    error_production: float | None
    statistic: float | None
    p_value: float | None
    alpha: float
    margin: float
    min_samples: int
    test: str = TEST_NAME

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_canary(
    candidate_path: str | Path,
    candidate_sha: str,
    candidate_size: int,
    production_path: str | Path | None,
    prod_sha: str | None,
    prod_size: int | None,
    traffic_df: pd.DataFrame,
    *,
    alpha: float = 0.05,
    margin: float = 0.01,
    min_samples: int = 2000,
) -> CanaryEvidence:
    """Replay ``traffic_df`` to both models and decide with the pre-declared test."""
    if not 0.0 < alpha < 1.0 or not 0.0 <= margin < 1.0 or min_samples < 1:
        raise InvalidInput(
            f"invalid canary parameters alpha={alpha}, margin={margin}, min_samples={min_samples}"
        )
    features, labels = _traffic(traffic_df)
    candidate_errors = _errors(candidate_path, candidate_sha, candidate_size, features, labels)
    n = len(labels)
    error_candidate = float(candidate_errors.mean()) if n else 0.0
    if production_path is None:
        return CanaryEvidence(
            passed=True,
            decision="no production baseline",
            n_candidate=n,
            n_production=0,
            error_candidate=error_candidate,
            error_production=None,
            statistic=None,
            p_value=None,
            alpha=alpha,
            margin=margin,
            min_samples=min_samples,
        )
    if prod_sha is None or prod_size is None:
        raise InvalidInput("the production model needs its sha256 and size")
    production_errors = _errors(production_path, prod_sha, prod_size, features, labels)
    error_production = float(production_errors.mean()) if n else 0.0
    statistic, p_value = non_inferiority_test(
        int(candidate_errors.sum()), n, int(production_errors.sum()), n, margin
    )
    if n < min_samples:
        passed, decision = False, f"insufficient samples ({n} < {min_samples})"
    elif p_value < alpha:
        passed, decision = True, "non-inferior"
    else:
        passed, decision = False, "not shown non-inferior"
    return CanaryEvidence(
        passed=passed,
        decision=decision,
        n_candidate=n,
        n_production=n,
        error_candidate=error_candidate,
        error_production=error_production,
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
        margin=margin,
        min_samples=min_samples,
    )


def non_inferiority_test(
    errors_candidate: int,
    n_candidate: int,
    errors_production: int,
    n_production: int,
    margin: float,
) -> tuple[float, float]:
    """(z, one-sided p) for H0: p_candidate - p_production >= margin."""
    p_c = (errors_candidate + 1) / (n_candidate + 2)
    p_p = (errors_production + 1) / (n_production + 2)
    se = math.sqrt(p_c * (1 - p_c) / (n_candidate + 2) + p_p * (1 - p_p) / (n_production + 2))
    z = (p_c - p_p - margin) / se
    return z, NormalDist().cdf(z)


def _traffic(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    names = data.feature_names()
    target = data.TARGET[0]
    missing = [c for c in [*names, target] if c not in frame.columns]
    if missing:
        raise InvalidInput(f"canary traffic lacks columns {', '.join(missing)}")
    labelled = frame[frame[target].notna()]
    return labelled[names], labelled[target].to_numpy().astype(np.int64)


def _errors(
    path: str | Path, sha256: str, size: int, features: pd.DataFrame, labels: np.ndarray
) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    model = load_model(path, sha256=sha256, size=size)
    with threadpool_limits(limits=1):  # small matrices: threads only add contention
        decisions = np.asarray(model.predict(features)).astype(np.int64)
    return np.asarray(decisions != labels)
