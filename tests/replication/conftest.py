"""Replication fixtures: a registry (``store``, from tests/conftest.py, on SQLite and
PostgreSQL), region stores on local folders or S3 buckets of the session's moto
server (reused from tests/artifacts), and a registered version to replicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from artifacts.conftest import aws_env, make_bucket, s3_client, s3_endpoint
from artifacts.support import TEST_MULTIPART_THRESHOLD, pattern

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.models import ArtifactRef, VersionCreate
from registry.store.base import RegistryStore

from .support import REGIONS

__all__ = ["aws_env", "make_bucket", "s3_client", "s3_endpoint"]

MODEL = "fraud-detector"


@pytest.fixture
def make_artifacts(
    tmp_path: Path, s3_endpoint: str, make_bucket: Callable[[], str]
) -> Callable[[str], ArtifactStore]:
    """A new, empty artifact store: ``local`` (a folder) or ``s3`` (a bucket of its own)."""

    def make(kind: str) -> ArtifactStore:
        if kind == "local":
            return LocalArtifactStore(tmp_path / f"store-{uuid.uuid4().hex[:8]}")
        return S3ArtifactStore(
            make_bucket(),
            prefix="models",
            endpoint_url=s3_endpoint,
            multipart_threshold=TEST_MULTIPART_THRESHOLD,
        )

    return make


@pytest.fixture
def make_regions(
    make_artifacts: Callable[[str], ArtifactStore],
) -> Callable[[str], dict[str, ArtifactStore]]:
    """One store per region in ``REGIONS``, all of one kind."""
    return lambda kind: {region: make_artifacts(kind) for region in REGIONS}


@pytest.fixture
def put_version(
    store: RegistryStore, tmp_path: Path
) -> Callable[[ArtifactStore, int], ArtifactRef]:
    """Put ``size`` pseudo-random bytes into a source store and register them as the next
    version of ``MODEL``; returns the artifact reference."""

    def put(source: ArtifactStore, size: int = 4096, *, seed: int | None = None) -> ArtifactRef:
        seed = uuid.uuid4().int % 1000 if seed is None else seed
        path = tmp_path / f"model-{uuid.uuid4().hex[:8]}.skops"
        block = pattern(seed)
        with path.open("wb") as out:
            remaining = size
            while remaining:
                out.write(block[: min(remaining, len(block))])
                remaining -= min(remaining, len(block))
        ref = source.put_file(path)
        store.register(MODEL, ref, VersionCreate())
        return ref

    return put
