"""Real models for the release checks: a month of the example workload, trained once.

The release package is generic; its tests use the example ML workload
(``registry.pipeline``) only to get real scikit-learn models, real skops files
and live-like traffic. Session-scoped and small, as in ``tests/pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from registry.models import Signature
from registry.pipeline import data
from registry.pipeline.training import TrainingResult, train_model

ROWS = 20_000
MONTH = (date(2026, 9, 1), date(2026, 9, 30))


@pytest.fixture(scope="session")
def training_frame() -> pd.DataFrame:
    """The training part of one generated month."""
    return data.split(data.generate_transactions(*MONTH, rows=ROWS, seed=7))[0]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def train(training_frame: pd.DataFrame, models_dir: Path) -> Callable[..., TrainingResult]:
    """Train on the month's training part (memoised per params)."""
    cache: dict[str, TrainingResult] = {}

    def _train(**params: object) -> TrainingResult:
        key = repr(sorted(params.items()))
        if key not in cache:
            cache[key] = train_model(training_frame, dict(params), seed=3, out_dir=models_dir)
        return cache[key]

    return _train


@pytest.fixture(scope="session")
def good(train: Callable[..., TrainingResult]) -> TrainingResult:
    return train()


@pytest.fixture(scope="session")
def previous_month_model(models_dir: Path) -> TrainingResult:
    """What Production would be: trained on the month before, same generator and seed."""
    frame = data.generate_transactions(date(2026, 8, 1), date(2026, 8, 31), rows=ROWS, seed=7)
    return train_model(data.split(frame)[0], {}, seed=3, out_dir=models_dir)


@pytest.fixture(scope="session")
def traffic() -> pd.DataFrame:
    """Live-like traffic: the week after the training month."""
    return data.generate_transactions(date(2026, 10, 1), date(2026, 10, 7), rows=4_000, seed=8)


@pytest.fixture(scope="session")
def signature() -> Signature:
    """The signature every model of the example workload has."""
    return Signature.model_validate(data.expected_signature())
