"""The real MLflow client (``mlflow-skinny``) against a real ``modelreg server`` process.

One server per backend (SQLite, PostgreSQL) for the whole package, started with an
artifact folder (``--artifacts``) and two source roots the MLflow API may read from: a
local folder and an ``s3://`` prefix on the session's moto server (the server process
reaches it through ``AWS_ENDPOINT_URL``); every test works on model names of its own.
Tracking stays on a local file store in each test's tmp dir; the registry is the server
(``mlflow.set_registry_uri``), and the client sends the admin token ``ml-ops`` as
``MLFLOW_TRACKING_TOKEN``, so ``ml-ops`` is the actor of every change in ``modelreg
history``.

The client gets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``: a 5xx is a server bug, and a test
should fail on it at once instead of retrying for minutes.
"""

from __future__ import annotations

import shutil
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import mlflow.tracking._model_registry.utils as registry_utils
import numpy as np
import pytest
from artifacts.conftest import aws_env, s3_client, s3_endpoint
from mlflow import MlflowClient
from server.conftest import Served, ServerProcess
from sklearn.linear_model import LogisticRegression

from registry.artifacts import LocalArtifactStore
from registry.auth import Role
from registry.models import Event
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

with warnings.catch_warnings():
    # mlflow.types.responses warns once, at import, about MLflow's own ``Any`` type hints
    # (nothing a caller can change); under pytest's warnings-as-errors the import fails.
    warnings.filterwarnings("ignore", ".*Any type hint is inferred as AnyType", UserWarning)
    import mlflow.pyfunc.model

__all__ = ["aws_env", "s3_client", "s3_endpoint"]  # fixtures, reused from tests/artifacts

ACTOR = "ml-ops"  # the admin token the client sends: every change's actor
S3_SOURCES = "sources"  # the key prefix under the bucket that the server may read


@dataclass(frozen=True)
class MlflowServer:
    """A running ``modelreg server`` with the MLflow API's folders, and its database."""

    served: Served
    artifacts: Path  # --artifacts: where the bytes of the sources it reads go
    sources: Path  # a local --source-root
    outside: Path  # a folder under no --source-root
    bucket: str  # s3://BUCKET/sources is the other --source-root
    s3: Any  # a boto3 client on the moto server

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def admin(self) -> str:
        return self.served.admin

    def db(self) -> SqlStore:
        """The registry database itself (close it: use ``with``)."""
        return SqlStore(self.served.db_url, actor="test-reader")

    def token(self, name: str, role: Role | str) -> str:
        return self.served.token(name, role)

    def artifact_store(self) -> LocalArtifactStore:
        return LocalArtifactStore(self.artifacts)

    def upload(self, folder: Path) -> str:
        """Every file under ``folder`` to a new prefix under the readable S3 root."""
        prefix = f"{S3_SOURCES}/{uuid.uuid4().hex[:12]}"
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(folder).as_posix()}"
                self.s3.upload_file(str(path), self.bucket, key)
        return f"s3://{self.bucket}/{prefix}"

    def gate_free(self, name: str) -> None:
        """A policy with no required gate: stage and alias moves behave as in MLflow."""
        with SqlStore(self.served.db_url, actor="test-admin") as store:
            store.set_policy(name, ReleasePolicy(required=()), reason="MLflow-style moves")

    def history(self, name: str) -> list[Event]:
        with self.db() as store:
            return store.history(name)


# As tests/conftest.py's (which test modules cannot import reliably).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="package", params=BACKENDS)
def mlflow_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The registry of the package's server on one backend: ``module_store_url`` one
    scope up, as starting a server per module was most of these tests' time. A module
    that runs on SQLite only narrows the parameter with ``SQLITE_ONLY``."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("mlflow-registry") / "reg.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    database = request.getfixturevalue("postgres_database")
    url = database.create_schema("mlflow")
    yield url
    database.drop_schema(url)


# A module's mark for running on SQLite only (the heavier client flows, whose SQL the
# two-backend modules already cover); it shares the package's SQLite server.
SQLITE_ONLY = pytest.mark.parametrize("mlflow_store_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="package")
def mlflow_server(
    mlflow_store_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: str,
    s3_client: Any,
) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow-server")
    sources, outside = root / "sources", root / "outside"
    sources.mkdir()
    outside.mkdir()
    bucket = f"mlflow-src-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    with SqlStore(mlflow_store_url, actor="test-admin") as store:
        _made, admin = store.create_token(ACTOR, Role.ADMIN)
    server = ServerProcess(
        mlflow_store_url,
        root / "server.log",
        args=[
            "--artifacts",
            str(root / "artifacts"),
            "--source-root",
            str(sources),
            "--source-root",
            f"s3://{bucket}/{S3_SOURCES}",
        ],
        env={"AWS_ENDPOINT_URL": s3_endpoint},
    ).start()
    try:
        yield MlflowServer(
            Served(server, mlflow_store_url, admin, {ACTOR: admin}),
            root / "artifacts",
            sources,
            outside,
            bucket,
            s3_client,
        )
    finally:
        server.stop()


@pytest.fixture
def mlflow_env(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MlflowServer:
    """The client's environment: tracking on a file store here, the registry on the server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_server.admin)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server.url)  # restored after the test
    monkeypatch.setattr(registry_utils, "_registry_uri", None)  # so is set_registry_uri's
    mlflow.set_registry_uri(mlflow_server.url)
    return mlflow_server


@pytest.fixture
def client(mlflow_env: MlflowServer) -> MlflowClient:
    return MlflowClient(registry_uri=mlflow_env.url)


@pytest.fixture
def name() -> str:
    """A model name of the test's own (one server serves the whole module)."""
    return f"mlc-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class SavedModel:
    """A fitted scikit-learn model saved with ``mlflow.sklearn.save_model``."""

    estimator: LogisticRegression
    rows: np.ndarray[Any, np.dtype[np.float64]]  # rows to predict on
    folder: Path  # the saved MLflow model, under the server's local --source-root

    @property
    def uri(self) -> str:
        return self.folder.as_uri()


@pytest.fixture(scope="package")
def saved_model(mlflow_server: MlflowServer) -> SavedModel:
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(80, 4))
    labels = (rows[:, 0] + 0.5 * rows[:, 2] > 0).astype(int)
    estimator = LogisticRegression().fit(rows, labels)
    folder = mlflow_server.sources / "fraud-model"
    # Explicit requirements: save_model would otherwise load the model in a subprocess
    # to infer them (seconds, and beside the point here).
    requirements = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
    mlflow.sklearn.save_model(estimator, str(folder), pip_requirements=requirements)
    return SavedModel(estimator, rows, folder)


def copy_model(model: SavedModel, into: Path) -> Path:
    """The saved model's files in another folder (a source elsewhere)."""
    target = into / f"model-{uuid.uuid4().hex[:8]}"
    shutil.copytree(model.folder, target)
    return target


def kinds(events: list[Event]) -> list[str]:
    return [event.kind for event in events]


def register(client: MlflowClient, name: str, model: SavedModel, count: int = 1) -> list[str]:
    """Create ``name`` and register ``count`` versions of the saved model (read by the
    server into a verified bundle); the MLflow version strings."""
    client.create_registered_model(name)
    return [client.create_model_version(name, model.uri).version for _ in range(count)]
