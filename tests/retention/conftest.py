"""Retention fixtures: a registry (``store``, SQLite and PostgreSQL, from tests/conftest.py)
beside a main artifact store and one region store, both local folders or both S3
buckets on the session's moto server (reused from tests/artifacts)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from artifacts.conftest import aws_env, make_bucket, s3_client, s3_endpoint

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.models import ArtifactRef, VersionCreate
from registry.retention import MAIN_STORE, GcOptions, GcReport, collect
from registry.store.base import RegistryStore

__all__ = ["aws_env", "make_bucket", "s3_client", "s3_endpoint"]

REGION = "us-east"
MODEL = "fraud-detector"
# Run "a day later": everything stored before the run is older than the default min-age.
LATER = timedelta(hours=25)


@dataclass
class Registry:
    """The registry and its artifact stores, with the helpers a gc test needs."""

    store: RegistryStore
    main: ArtifactStore
    region: ArtifactStore
    tmp_path: Path

    @property
    def stores(self) -> dict[str, ArtifactStore]:
        return {MAIN_STORE: self.main, REGION: self.region}

    def put(self, data: bytes | None = None) -> ArtifactRef:
        """Store bytes (fresh random ones unless given) in the main store."""
        path = self.tmp_path / f"upload-{uuid.uuid4().hex}"
        path.write_bytes(data if data is not None else os.urandom(64))
        return self.main.put_file(path)

    def register(self, name: str = MODEL, ref: ArtifactRef | None = None) -> int:
        version = self.store.register(name, ref or self.put(), VersionCreate.parse({}))
        return version.version

    def sha(self, name: str, version: int) -> str:
        return self.store.get_version(name, version).artifact.sha256

    def held(self, artifacts: ArtifactStore | None = None) -> set[str]:
        return {obj.sha256 for obj in (artifacts or self.main).iter_content()}

    def gc(self, *, later: bool = True, **options: object) -> GcReport:
        """``modelreg gc`` over both stores, by default as if run a day from now."""
        now = datetime.now(UTC) + (LATER if later else timedelta(0))
        settings = {"log_path": self.tmp_path / "home" / "gc.log", **options}
        return collect(self.store, self.stores, GcOptions(**settings), now=now)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_artifacts(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], ArtifactStore]:
    def make(kind: str) -> ArtifactStore:
        if kind == "local":
            return LocalArtifactStore(tmp_path / f"store-{uuid.uuid4().hex[:8]}")
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("make_bucket")()
        return S3ArtifactStore(bucket, prefix="models", endpoint_url=endpoint)

    return make


@pytest.fixture
def registry(
    store: RegistryStore, kind: str, make_artifacts: Callable[[str], ArtifactStore], tmp_path: Path
) -> Registry:
    return Registry(store, make_artifacts(kind), make_artifacts(kind), tmp_path)
