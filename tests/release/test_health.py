"""Health checks in a fresh worker process: golden batch, checksum, start-up budget."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from registry.pipeline.training import TrainingResult
from registry.release.health import HealthEvidence, check_health

# Generous, so a busy machine cannot turn the other checks into start-up failures.
BUDGET = 120.0


def test_a_good_replica_is_healthy(good: TrainingResult, tmp_path: Path) -> None:
    replica = tmp_path / "us-east" / "model.skops"
    replica.parent.mkdir()
    shutil.copyfile(good.model_path, replica)

    result = check_health(
        replica,
        good.sha256,
        good.size,
        good.golden,
        startup_budget_s=BUDGET,
        replica_uri="file:///replicas/us-east/model.skops",
    )

    assert result.passed, result.error
    assert result.error is None
    assert result.replica_uri == "file:///replicas/us-east/model.skops"
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-6
    assert result.startup_s is not None and result.startup_s > 0
    assert result.latency_p99_ms is not None and result.latency_p99_ms > 0
    record = json.loads(json.dumps(result.model_dump(mode="json"), allow_nan=False))
    assert HealthEvidence.model_validate(record) == result


def test_golden_mismatch_fails(good: TrainingResult) -> None:
    golden = copy.deepcopy(good.golden)
    golden["predictions"][5] += 0.01

    result = check_health(good.model_path, good.sha256, good.size, golden, startup_budget_s=BUDGET)

    assert not result.passed
    assert result.error is not None and result.error.startswith("golden prediction 5 differs by")
    assert result.max_abs_diff is not None and result.max_abs_diff > 0.009


def test_tampered_replica_fails_before_loading(good: TrainingResult, tmp_path: Path) -> None:
    replica = tmp_path / "model.skops"
    content = bytearray(Path(good.model_path).read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size, different bytes
    replica.write_bytes(bytes(content))

    result = check_health(replica, good.sha256, good.size, good.golden, startup_budget_s=BUDGET)

    assert not result.passed
    assert result.error is not None and result.error.startswith("ChecksumMismatch: ")
    assert result.max_abs_diff is None


def test_missing_replica_fails(good: TrainingResult, tmp_path: Path) -> None:
    result = check_health(
        tmp_path / "nowhere.skops", good.sha256, good.size, good.golden, startup_budget_s=BUDGET
    )
    assert not result.passed
    assert result.error is not None and result.error.startswith("ArtifactError: ")


def test_startup_budget_exceeded_fails(good: TrainingResult) -> None:
    # No interpreter imports scikit-learn in a millisecond.
    result = check_health(
        good.model_path, good.sha256, good.size, good.golden, startup_budget_s=0.001
    )
    assert not result.passed
    assert result.error == "not ready within the 0.001s budget"
    assert result.startup_s is None


def test_golden_batch_of_another_shape_fails(good: TrainingResult) -> None:
    golden = copy.deepcopy(good.golden)
    golden["predictions"] = golden["predictions"][:-1]
    result = check_health(good.model_path, good.sha256, good.size, golden, startup_budget_s=BUDGET)
    assert not result.passed
    assert result.error == "golden batch has 31 predictions, the model gave 32"


def test_a_nan_anywhere_in_the_golden_batch_fails(good: TrainingResult) -> None:
    # NaN compares false with everything: it must not slip past the tolerance.
    golden = copy.deepcopy(good.golden)
    golden["predictions"][7] = float("nan")

    result = check_health(good.model_path, good.sha256, good.size, golden, startup_budget_s=BUDGET)

    assert not result.passed
    assert result.error is not None and result.error.startswith(
        "golden prediction 7 differs by inf"
    )
    assert result.max_abs_diff is None
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_a_failed_check_names_its_replica(good: TrainingResult, tmp_path: Path) -> None:
    result = check_health(
        tmp_path / "nowhere.skops",
        good.sha256,
        good.size,
        good.golden,
        startup_budget_s=BUDGET,
        replica_uri="s3://eu-west/models/abc",
    )
    assert not result.passed and result.replica_uri == "s3://eu-west/models/abc"


def test_health_evidence_is_frozen(good: TrainingResult) -> None:
    evidence = HealthEvidence(passed=True, startup_s=1.0, latency_p99_ms=2.0, max_abs_diff=0.0)
    with pytest.raises(ValidationError):
        evidence.passed = False  # type: ignore[misc]
    with pytest.raises(ValidationError):
        HealthEvidence(passed=True, startup_s=float("inf"), latency_p99_ms=None, max_abs_diff=None)
