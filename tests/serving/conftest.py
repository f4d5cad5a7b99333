"""Fixtures for the serving tests: real models (trained once per session), a real
registry per test, and real servers on it (see ``serving_harness``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from serving_harness import MODEL, Registry, Server, ThreadServer

from registry.models import Signature
from registry.pipeline import data
from registry.pipeline.training import TrainingResult, train_model

MONTH = (date(2026, 9, 1), date(2026, 9, 30))


@pytest.fixture(scope="session")
def training_frame() -> pd.DataFrame:
    return data.split(data.generate_transactions(*MONTH, rows=6_000, seed=7))[0]


@pytest.fixture(scope="session")
def train(
    training_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., TrainingResult]:
    """Train on the month's training part (memoised per params)."""
    out_dir = tmp_path_factory.mktemp("models")
    cache: dict[str, TrainingResult] = {}

    def _train(**params: object) -> TrainingResult:
        key = repr(sorted(params.items()))
        if key not in cache:
            cache[key] = train_model(training_frame, dict(params), seed=3, out_dir=out_dir)
        return cache[key]

    return _train


@pytest.fixture(scope="session")
def signature() -> Signature:
    return Signature.model_validate(data.expected_signature())


@pytest.fixture(scope="session")
def rows(training_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Three JSON rows with exactly the example workload's features."""
    frame = training_frame[data.feature_names()].head(3)
    records: list[dict[str, Any]] = []
    for record in frame.to_dict(orient="records"):
        records.append({k: v.item() if hasattr(v, "item") else v for k, v in record.items()})
    return records


@pytest.fixture(scope="session")
def small_model(
    training_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """A real model with another signature (two features) and that signature."""
    from sklearn.linear_model import LogisticRegression

    from registry.modelio import save_model

    features = [("amount", "float64"), ("hour", "int64")]
    columns = [name for name, _ in features]
    model = LogisticRegression().fit(training_frame[columns], training_frame[data.TARGET[0]])
    path = save_model(model, tmp_path_factory.mktemp("small") / "small.skops")
    signature = {
        "features": [{"name": n, "dtype": t} for n, t in features],
        "target": {"name": data.TARGET[0], "dtype": data.TARGET[1]},
    }
    return path, signature


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path)


@pytest.fixture
def released(registry: Registry, train: Callable[..., TrainingResult]) -> Registry:
    """A registry whose Production is v1 of ``MODEL``, a real model in every region."""
    registry.release(registry.register(train()))
    return registry


@pytest.fixture
def serve(registry: Registry) -> Iterator[Callable[..., Server]]:
    """Start ``modelreg serve MODEL ARGS`` (stopped at teardown) once it answers."""
    started: list[Server] = []

    def _serve(*args: str) -> Server:
        started.append(Server(registry, [MODEL, *args]))
        return started[-1].wait_up()

    yield _serve
    for server in started:
        server.stop()


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], ThreadServer]]:
    started: list[ThreadServer] = []

    def _serve(app: Any) -> ThreadServer:
        started.append(ThreadServer(app))
        return started[-1]

    yield _serve
    for server in started:
        server.stop()
