"""The canary's decision and evidence: from paired errors, and on real models and traffic."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from registry.errors import ChecksumMismatch, InvalidInput
from registry.models import Signature
from registry.pipeline.training import TrainingResult
from registry.release.canary import (
    EXACT_TEST,
    NO_TEST,
    SCORE_TEST,
    CanaryEvidence,
    ModelFile,
    judge,
    paired_non_inferiority,
    run_canary,
)
from registry.release.policy import CanaryParams

DEFAULT = CanaryParams()  # alpha 0.05, margin 0.01, 2,000 rows


def _pairs(
    both: int, only_candidate: int, only_production: int, neither: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row errors (candidate, production) with the given cell counts."""
    candidate = [True] * both + [True] * only_candidate + [False] * (only_production + neither)
    production = [True] * both + [False] * only_candidate + [True] * only_production
    production += [False] * neither
    return np.array(candidate), np.array(production)


def _file(result: TrainingResult) -> ModelFile:
    return ModelFile(path=result.model_path, sha256=result.sha256, size=result.size)


def _canary(
    candidate: TrainingResult,
    production: TrainingResult | None,
    traffic: pd.DataFrame,
    params: CanaryParams = DEFAULT,
) -> CanaryEvidence:
    return run_canary(
        _file(candidate),
        None if production is None else _file(production),
        traffic,
        signature=Signature.model_validate(candidate.signature),
        params=params,
        baseline_version=None if production is None else 4,
    )


# The decision, from paired errors


def test_the_evidence_counts_the_pairs() -> None:
    candidate, production = _pairs(both=30, only_candidate=12, only_production=18, neither=2940)

    evidence = judge(candidate, production, DEFAULT, baseline_version=7)

    assert (evidence.n, evidence.candidate_errors, evidence.production_errors) == (3000, 42, 48)
    assert evidence.discordant_candidate_worse == 12
    assert evidence.discordant_candidate_better == 18
    assert evidence.error_candidate == pytest.approx(42 / 3000)
    assert evidence.error_production == pytest.approx(48 / 3000)
    assert (evidence.statistic, evidence.p_value) == paired_non_inferiority(12, 18, 3000, 0.01)
    assert evidence.baseline_version == 7
    assert evidence.test == SCORE_TEST


def test_identical_errors_pass_a_positive_margin_with_enough_rows() -> None:
    candidate, production = _pairs(both=60, only_candidate=0, only_production=0, neither=1940)

    evidence = judge(candidate, production, DEFAULT, baseline_version=1)

    assert evidence.passed and evidence.decision == "non-inferior"
    assert evidence.discordant_candidate_worse == evidence.discordant_candidate_better == 0


def test_identical_errors_are_not_shown_better_at_margin_zero() -> None:
    # Margin 0 asks for evidence that the candidate errs less: agreement is none.
    candidate, production = _pairs(both=60, only_candidate=0, only_production=0, neither=1940)
    params = CanaryParams(margin=0.0)

    evidence = judge(candidate, production, params, baseline_version=1)

    assert not evidence.passed and evidence.decision == "not shown non-inferior"
    assert evidence.p_value == 1.0 and evidence.test == EXACT_TEST


def test_a_clearly_worse_candidate_fails() -> None:
    candidate, production = _pairs(both=40, only_candidate=200, only_production=10, neither=1750)

    evidence = judge(candidate, production, DEFAULT, baseline_version=1)

    assert not evidence.passed and evidence.decision == "not shown non-inferior"
    assert evidence.p_value is not None and evidence.p_value > 0.999


def test_fewer_rows_than_declared_never_pass() -> None:
    candidate, production = _pairs(both=0, only_candidate=0, only_production=0, neither=1999)

    evidence = judge(candidate, production, DEFAULT, baseline_version=1)

    assert not evidence.passed
    assert evidence.decision == "insufficient samples (1999 < 2000)"
    assert evidence.p_value is not None and evidence.p_value < DEFAULT.alpha  # still recorded


def test_no_traffic_at_all_is_refused_without_a_statistic() -> None:
    empty = np.zeros(0, dtype=bool)

    evidence = judge(empty, empty, DEFAULT, baseline_version=1)

    assert not evidence.passed and evidence.decision == "insufficient samples (0 < 2000)"
    assert evidence.statistic is None and evidence.p_value is None


def test_the_declared_alpha_decides() -> None:
    candidate, production = _pairs(both=0, only_candidate=60, only_production=50, neither=4890)
    _, p = paired_non_inferiority(60, 50, 5000, 0.01)
    strict, lenient = CanaryParams(alpha=p * 0.9), CanaryParams(alpha=p * 1.1)

    assert not judge(candidate, production, strict, baseline_version=1).passed
    assert judge(candidate, production, lenient, baseline_version=1).passed


def test_without_production_there_is_nothing_to_compare() -> None:
    candidate, _ = _pairs(both=0, only_candidate=5, only_production=0, neither=95)

    evidence = judge(candidate, None, DEFAULT, baseline_version=None)

    assert evidence.passed and evidence.decision == "no production baseline"
    assert evidence.test == NO_TEST and evidence.baseline_version is None
    assert evidence.production_errors is None and evidence.discordant_candidate_worse is None
    assert evidence.error_production is None and evidence.p_value is None


def test_the_evidence_is_json_with_every_field_and_the_declared_parameters() -> None:
    candidate, production = _pairs(both=30, only_candidate=12, only_production=18, neither=2940)
    params = CanaryParams(alpha=0.01, margin=0.02, min_samples=2500)

    record = judge(candidate, production, params, baseline_version=3).model_dump(mode="json")

    assert set(record) >= {
        "passed",
        "decision",
        "n",
        "candidate_errors",
        "production_errors",
        "discordant_candidate_worse",
        "discordant_candidate_better",
        "error_candidate",
        "error_production",
        "statistic",
        "p_value",
        "alpha",
        "margin",
        "min_samples",
        "test",
        "baseline_version",
    }
    assert (record["alpha"], record["margin"], record["min_samples"]) == (0.01, 0.02, 2500)
    assert record["baseline_version"] == 3
    assert CanaryEvidence.model_validate(json.loads(json.dumps(record, allow_nan=False))) == (
        judge(candidate, production, params, baseline_version=3)
    )


def test_evidence_is_frozen_and_finite() -> None:
    candidate, production = _pairs(both=0, only_candidate=1, only_production=1, neither=98)
    evidence = judge(candidate, production, DEFAULT, baseline_version=1)

    with pytest.raises(ValidationError):
        evidence.passed = True  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CanaryEvidence.model_validate({**evidence.model_dump(), "p_value": float("nan")})


def test_paired_errors_must_have_the_same_rows() -> None:
    with pytest.raises(InvalidInput, match="paired rows differ"):
        judge(np.zeros(10, dtype=bool), np.zeros(9, dtype=bool), DEFAULT, baseline_version=1)


# On real models and live-like traffic


def test_a_model_against_itself_is_non_inferior(
    good: TrainingResult, traffic: pd.DataFrame
) -> None:
    evidence = _canary(good, good, traffic)

    assert evidence.passed and evidence.decision == "non-inferior"
    assert evidence.n == 4_000 and evidence.error_candidate == evidence.error_production
    assert evidence.discordant_candidate_worse == evidence.discordant_candidate_better == 0
    assert evidence.baseline_version == 4


def test_a_new_months_model_passes_against_production(
    good: TrainingResult, previous_month_model: TrainingResult, traffic: pd.DataFrame
) -> None:
    evidence = _canary(good, previous_month_model, traffic)
    assert evidence.passed, evidence


def test_a_worse_candidate_is_refused_with_its_evidence(
    train: Callable[..., TrainingResult], good: TrainingResult, traffic: pd.DataFrame
) -> None:
    flags_everything = train(threshold=0.001)

    evidence = _canary(flags_everything, good, traffic)

    assert not evidence.passed and evidence.decision == "not shown non-inferior"
    assert evidence.error_production is not None
    assert evidence.error_candidate > evidence.error_production + 0.5
    assert evidence.discordant_candidate_worse is not None
    assert evidence.discordant_candidate_worse > 2_000
    json.dumps(evidence.model_dump(mode="json"), allow_nan=False)


def test_too_little_traffic_never_passes(good: TrainingResult, traffic: pd.DataFrame) -> None:
    evidence = _canary(good, good, traffic.head(500))
    assert not evidence.passed and evidence.decision == "insufficient samples (500 < 2000)"


def test_without_production_the_candidate_is_only_scored(
    good: TrainingResult, traffic: pd.DataFrame
) -> None:
    evidence = _canary(good, None, traffic)
    assert evidence.passed and evidence.decision == "no production baseline"
    assert evidence.n == 4_000 and 0 < evidence.error_candidate < 0.5


def test_a_baseline_version_needs_its_model(good: TrainingResult, traffic: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="baseline version 2 given without its model"):
        run_canary(
            _file(good),
            None,
            traffic,
            signature=Signature.model_validate(good.signature),
            params=DEFAULT,
            baseline_version=2,
        )


def test_a_tampered_model_is_not_replayed(good: TrainingResult, traffic: pd.DataFrame) -> None:
    tampered = _file(good).model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ChecksumMismatch):
        run_canary(
            tampered,
            None,
            traffic,
            signature=Signature.model_validate(good.signature),
            params=DEFAULT,
            baseline_version=None,
        )


def test_traffic_needs_the_signatures_target(good: TrainingResult, traffic: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="lacks columns is_fraud"):
        _canary(good, good, traffic.drop(columns=["is_fraud"]))


def test_traffic_needs_the_signatures_features(good: TrainingResult, traffic: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="lacks columns amount, hour"):
        _canary(good, good, traffic.drop(columns=["hour", "amount"]))


def test_columns_are_read_by_the_signature_not_by_position(
    good: TrainingResult, traffic: pd.DataFrame
) -> None:
    shuffled = traffic[list(reversed(traffic.columns))].assign(unrelated=1.0)
    assert _canary(good, good, shuffled) == _canary(good, good, traffic)


def test_a_signature_without_a_target_cannot_label_traffic(
    good: TrainingResult, traffic: pd.DataFrame
) -> None:
    unlabelled = Signature.model_validate({**good.signature, "target": None})
    with pytest.raises(InvalidInput, match="names no target"):
        run_canary(
            _file(good),
            _file(good),
            traffic,
            signature=unlabelled,
            params=DEFAULT,
            baseline_version=1,
        )
