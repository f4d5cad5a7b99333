"""Artifact-store fixtures: a real S3 endpoint (moto server over HTTP on 127.0.0.1) and stores.

``store`` runs each contract test on a local folder and on an S3 bucket of its own.
The moto server starts once per session; dummy credentials keep boto3 from
reading the machine's AWS configuration.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore, make_client

from .support import TEST_MULTIPART_THRESHOLD, pattern

BACKENDS = ["local", "s3"]


@pytest.fixture(scope="session")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    nowhere = str(tmp_path_factory.mktemp("aws") / "absent")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_CONFIG_FILE", nowhere)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def s3_endpoint(aws_env: None) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    return make_client(s3_endpoint)


@pytest.fixture
def make_bucket(s3_client: Any) -> Callable[[], str]:
    def make() -> str:
        name = f"art-{uuid.uuid4().hex[:16]}"
        s3_client.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def make_store(
    tmp_path: Path, s3_endpoint: str, make_bucket: Callable[[], str]
) -> Callable[[str], ArtifactStore]:
    counter = iter(range(1000))

    def make(backend: str) -> ArtifactStore:
        if backend == "local":
            return LocalArtifactStore(tmp_path / f"local-{next(counter)}")
        return S3ArtifactStore(
            make_bucket(),
            prefix="models/prod",
            endpoint_url=s3_endpoint,
            multipart_threshold=TEST_MULTIPART_THRESHOLD,
        )

    return make


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, make_store: Callable[[str], ArtifactStore]) -> Any:
    return make_store(request.param)


@pytest.fixture
def artifact(tmp_path: Path) -> Callable[..., Path]:
    """Write a file of ``size`` pseudo-random bytes (``seed`` picks which) and return its path."""

    def write(size: int = 4096, seed: int = 0, name: str | None = None) -> Path:
        path = tmp_path / "src" / (name or f"artifact-{seed}-{size}.bin")
        path.parent.mkdir(parents=True, exist_ok=True)
        block = pattern(seed)
        with path.open("wb") as out:
            remaining = size
            while remaining:
                out.write(block[: min(remaining, len(block))])
                remaining -= min(remaining, len(block))
        return path

    return write
