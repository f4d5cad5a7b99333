"""Resolver fixtures: a real registry in a temporary home (SQLite, or PostgreSQL from
tests/conftest.py), three small trained skops models, registered, replicated into
every region folder and released through the gates, and resolvers that close at
teardown.

The models come from the example workload (``registry.pipeline``), trained once per
session on a few thousand generated rows: real scikit-learn pipelines in real skops
files, so loading, checksums and predictions are the real thing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry.config import Settings
from registry.models import PointerChange, Signature, Stage, VersionCreate
from registry.pipeline import data
from registry.pipeline.training import TrainingResult, train_model
from registry.release.health_worker import to_records
from registry.release_models import ReplicaState
from registry.resolver import Resolver
from registry.store.sql import SqlStore

MODEL = "fraud-detector"
REF = f"{MODEL}@production"
REGION = "eu-west"
ROWS = 3_000
# Three models that differ in their bytes (and in what they flag).
PARAMS: tuple[dict[str, Any], ...] = ({}, {"C": 0.3}, {"alert_rate": 0.05})


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> list[TrainingResult]:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 30), rows=ROWS, seed=7)
    train = data.split(frame)[0]
    out = tmp_path_factory.mktemp("models")
    results = [train_model(train, dict(p), seed=3, out_dir=out) for p in PARAMS]
    assert len({r.sha256 for r in results}) == len(results), "the models must differ in bytes"
    return results


@pytest.fixture(scope="session")
def signature(trained: list[TrainingResult]) -> Signature:
    return Signature.model_validate(trained[0].signature)


@pytest.fixture(scope="session")
def rows() -> list[dict[str, Any]]:
    """A few rows of live-like traffic, exactly the signature's features."""
    frame = data.generate_transactions(date(2026, 10, 1), date(2026, 10, 2), rows=8, seed=8)
    return to_records(frame[data.feature_names()])


@dataclass
class Registry:
    """One registry (database, artifact store, region folders) and what a release
    pipeline would do to it, through the store's public methods and the gates."""

    settings: Settings
    store: SqlStore
    models: list[TrainingResult]
    tmp: Path
    resolvers: list[Resolver] = field(default_factory=list)
    _caches: Iterator[int] = field(default_factory=itertools.count)

    def register(self, model: int, *, signature: Signature | None = None) -> int:
        """Register trained model ``model`` (0-2) as the next version, with its bytes
        verified in every region; returns the version number."""
        result = self.models[model]
        path = Path(result.model_path)
        artifact = self.settings.artifacts().put_file(path)
        meta = VersionCreate(
            signature=signature or Signature.model_validate(result.signature),
            metrics={"auc": 0.9},
        )
        version = self.store.register(MODEL, artifact, meta).version
        for region in self.settings.regions:
            placed = self.settings.region_store(region).put_file(path)
            self.store.record_replica(
                MODEL,
                version,
                region,
                ReplicaState.VERIFIED,
                uri=placed.uri,
                sha256=placed.sha256,
                size=placed.size,
            )
        return version

    def stage(self, version: int) -> None:
        """None -> Staging, with passing health checks in every region."""
        if self.store.get_version(MODEL, version).stage is Stage.NONE:
            self.store.transition(MODEL, version, Stage.STAGING)
        for region in self.settings.regions:
            self.store.record_check(
                MODEL, version, "health", region=region, passed=True, evidence={}
            )

    def promote(self, version: int) -> PointerChange:
        """None/Staging -> Production through the gates, with passing health checks in
        every region and a passing canary against the current Production version."""
        self.stage(version)
        production = self.store.get_model(MODEL).production
        self.store.record_check(
            MODEL,
            version,
            "canary",
            passed=True,
            evidence={"decision": "non-inferior", "baseline_version": production},
        )
        return self.store.transition(MODEL, version, Stage.PRODUCTION)

    def region_file(self, version: int, region: str = REGION) -> Path:
        """Where ``version``'s bytes live in a region's folder."""
        sha256 = self.store.get_version(MODEL, version).artifact.sha256
        path = self.settings.region_store(region).local_path(sha256)
        assert path is not None
        return path

    def model_file(self, version: int) -> Path:
        """The trained file behind ``version`` (its good bytes)."""
        sha256 = self.store.get_version(MODEL, version).artifact.sha256
        return next(Path(m.model_path) for m in self.models if m.sha256 == sha256)

    def cache_dir(self) -> Path:
        return self.tmp / f"cache-{next(self._caches)}"

    def resolver(
        self, refs: tuple[str, ...] = (REF,), *, settings: Settings | None = None, **options: Any
    ) -> Resolver:
        """A started resolver in ``REGION`` (closed at teardown); a fresh cache folder
        unless ``cache_dir`` is given."""
        options.setdefault("cache_dir", self.cache_dir())
        options.setdefault("poll_s", 0.05)
        resolver = Resolver(settings or self.settings, REGION, list(refs), **options)
        self.resolvers.append(resolver)
        return resolver.start()

    def close(self) -> None:
        for resolver in self.resolvers:
            resolver.close()
        self.store.close()


@pytest.fixture
def registry(store_url: str, tmp_path: Path, trained: list[TrainingResult]) -> Iterator[Registry]:
    """An empty registry on ``backend`` with a home, an artifact store and region folders."""
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        registry_url=store_url,
        artifact_root=str(tmp_path / "artifacts"),
        actor="release-bot",
    )
    made = Registry(settings, SqlStore(store_url, actor="release-bot"), trained, tmp_path)
    yield made
    made.close()


@pytest.fixture
def fraud(registry: Registry) -> Registry:
    """Versions 1-3 of ``fraud-detector`` (three different models), v1 in Production."""
    for model in range(3):
        registry.register(model)
    registry.promote(1)
    return registry
