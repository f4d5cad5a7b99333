"""The canary's pre-declared non-inferiority test, on real models and live-like traffic."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pandas as pd
import pytest

from registry.errors import ChecksumMismatch, InvalidInput
from registry.pipeline.training import TrainingResult
from registry.release.canary import TEST_NAME, CanaryEvidence, non_inferiority_test, run_canary


def _canary(
    candidate: TrainingResult,
    production: TrainingResult | None,
    traffic: pd.DataFrame,
    **options: float,
) -> CanaryEvidence:
    return run_canary(
        candidate.model_path,
        candidate.sha256,
        candidate.size,
        production.model_path if production else None,
        production.sha256 if production else None,
        production.size if production else None,
        traffic,
        **options,  # type: ignore[arg-type]
    )


def test_equal_models_are_non_inferior(good: TrainingResult, traffic: pd.DataFrame) -> None:
    evidence = _canary(good, good, traffic)

    assert evidence.passed
    assert evidence.decision == "non-inferior"
    assert evidence.n_candidate == evidence.n_production == 4_000
    assert evidence.error_candidate == evidence.error_production
    assert evidence.statistic is not None and evidence.statistic < 0
    assert evidence.p_value is not None and evidence.p_value < evidence.alpha
    assert (evidence.alpha, evidence.margin, evidence.min_samples) == (0.05, 0.01, 2000)


def test_a_new_months_model_passes_against_production(
    good: TrainingResult, previous_month_model: TrainingResult, traffic: pd.DataFrame
) -> None:
    assert _canary(good, previous_month_model, traffic).passed


def test_a_worse_candidate_is_refused_with_its_evidence(
    train: Callable[..., TrainingResult], good: TrainingResult, traffic: pd.DataFrame
) -> None:
    flags_everything = train(threshold=0.001)

    evidence = _canary(flags_everything, good, traffic)

    assert not evidence.passed
    assert evidence.decision == "not shown non-inferior"
    assert evidence.error_production is not None
    assert evidence.error_candidate > evidence.error_production + 0.5
    assert evidence.p_value is not None and evidence.p_value > 0.99
    record = evidence.to_dict()
    assert set(record) == {
        "passed",
        "decision",
        "n_candidate",
        "n_production",
        "error_candidate",
        "error_production",
        "statistic",
        "p_value",
        "alpha",
        "margin",
        "min_samples",
        "test",
    }
    assert record["test"] == TEST_NAME
    json.dumps(record, allow_nan=False)


def test_too_few_samples_never_pass(good: TrainingResult, traffic: pd.DataFrame) -> None:
    evidence = _canary(good, good, traffic.head(500))
    assert not evidence.passed
    assert evidence.decision == "insufficient samples (500 < 2000)"
    assert evidence.p_value is not None  # the statistic is still recorded


def test_without_production_there_is_nothing_to_compare(
    good: TrainingResult, traffic: pd.DataFrame
) -> None:
    evidence = _canary(good, None, traffic)
    assert evidence.passed
    assert evidence.decision == "no production baseline"
    assert evidence.error_production is None and evidence.p_value is None
    json.dumps(evidence.to_dict(), allow_nan=False)


def test_a_tampered_model_is_not_replayed(good: TrainingResult, traffic: pd.DataFrame) -> None:
    with pytest.raises(ChecksumMismatch):
        run_canary(good.model_path, "0" * 64, good.size, None, None, None, traffic)


@pytest.mark.parametrize("options", [{"alpha": 0.0}, {"margin": -0.1}, {"min_samples": 0}])
def test_parameters_are_checked(
    good: TrainingResult, traffic: pd.DataFrame, options: dict[str, float]
) -> None:
    with pytest.raises(InvalidInput):
        _canary(good, good, traffic, **options)


def test_traffic_needs_labels_and_features(good: TrainingResult, traffic: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="lacks columns is_fraud"):
        _canary(good, good, traffic.drop(columns=["is_fraud"]))


def test_statistic_matches_the_formula() -> None:
    # 30/1000 vs 20/1000 errors, margin 0.01: adjusted rates 31/1002 and 21/1002.
    z, p = non_inferiority_test(30, 1000, 20, 1000, 0.01)
    p_c, p_p = 31 / 1002, 21 / 1002
    se = math.sqrt(p_c * (1 - p_c) / 1002 + p_p * (1 - p_p) / 1002)
    assert z == pytest.approx((p_c - p_p - 0.01) / se)
    assert p == pytest.approx(0.5 + 0.5 * math.erf(z / math.sqrt(2)))


def test_statistic_is_finite_when_nobody_errs() -> None:
    z, p = non_inferiority_test(0, 5000, 0, 5000, 0.01)
    assert math.isfinite(z) and p < 1e-6
