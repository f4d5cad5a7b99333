"""``runs:/`` and ``models:/m-`` sources read through a real MLflow tracking server.

A real ``mlflow server`` (SQLite backend, proxied artifacts) and a real ``modelreg
server --mlflow-tracking URL``: a scikit-learn model logged in a run is registered
through modelreg by its run URI, and comes out as a verified bundle that loads and
predicts as the original. With no tracking server configured, or one that is down,
the same source stays an unverified external reference.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.artifacts import open_store
from registry.artifacts.bundle import BUNDLE_FORMAT, read_manifest
from registry.auth import Role
from registry.models import EXTERNAL_FORMAT
from registry.store.sql import SqlStore

from .conftest import ServerProcess, free_port

# MLflow's own warnings about its client (type hints, deprecated stages), not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
]


class Tracking:
    """``mlflow server`` in a child process, on SQLite, proxying its artifacts."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder}/tracking.db",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self.log = folder / "tracking.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mlflow server not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("mlflow-tracking")
    tracking = Tracking(folder)
    db = f"sqlite:///{folder}/registry.db"
    with SqlStore(db, actor="setup") as store:
        _made, token = store.create_token("ml-admin", Role.ADMIN)
    artifacts = folder / "modelreg-artifacts"
    servers = {
        "tracked": ServerProcess(
            db,
            folder / "tracked.log",
            args=["--artifacts", str(artifacts), "--mlflow-tracking", tracking.url],
        ).start(),
        "untracked": ServerProcess(
            db, folder / "untracked.log", args=["--artifacts", str(artifacts)]
        ).start(),
        "tracking-down": ServerProcess(
            db,
            folder / "down.log",
            args=[
                "--artifacts",
                str(artifacts),
                "--mlflow-tracking",
                f"http://127.0.0.1:{free_port()}",
            ],
        ).start(),
    }
    try:
        yield {
            "tracking": tracking,
            "servers": servers,
            "db": db,
            "token": token,
            "artifacts": artifacts,
        }
    finally:
        for server in servers.values():
            server.stop()
        tracking.stop()


@pytest.fixture
def mlflow_env(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", world["token"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world["tracking"].url)
    mlflow.set_tracking_uri(world["tracking"].url)
    return mlflow


@pytest.fixture(scope="module")
def logged_run(world: dict[str, Any]) -> tuple[str, Any, Any, Any]:
    """A run with a scikit-learn model logged under ``model``: (run id, model info,
    the estimator, rows to predict). Logged once: each test registers it (by its run
    URI or its logged-model URI) under a name of its own, and nothing changes the run;
    ``log_model`` is most of each test's time."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    rows = rng.random((60, 3))
    estimator = LogisticRegression().fit(rows, (rows[:, 0] > 0.5).astype(int))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", world["tracking"].url)
        mlflow.set_tracking_uri(world["tracking"].url)
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(estimator, name="model")
    return run.info.run_id, info, estimator, rows


def _register(mlflow: Any, registry: str, source: str, name: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri(), registry_uri=registry)
    client.create_registered_model(name)
    return client, client.create_model_version(name, source, run_id=None)


def test_a_run_uri_is_read_through_the_tracking_server_into_a_verified_bundle(
    world: dict[str, Any], mlflow_env: Any, logged_run: tuple[str, Any, Any, Any]
) -> None:
    mlflow = mlflow_env
    run_id, _info, estimator, rows = logged_run
    registry = world["servers"]["tracked"].url
    name = f"tracked-{uuid.uuid4().hex[:8]}"
    client, made = _register(mlflow, registry, f"runs:/{run_id}/model", name)
    assert made.status == "READY" and made.source == f"runs:/{run_id}/model"
    with SqlStore(world["db"], actor="t") as db:
        artifact = db.get_version(name, int(made.version)).artifact
        assert artifact.format == BUNDLE_FORMAT
        store = open_store(str(world["artifacts"]))
        store.verify(artifact)  # every file, size and sha256
        paths = {f.path for f in read_manifest(store, artifact).files}
        assert {"MLmodel", "requirements.txt"} <= paths and len(paths) >= 3
        assert db.history(name)[-1].actor == "ml-admin"
    uri = client.get_model_version_download_uri(name, made.version)
    assert uri.startswith(f"{registry}/api/2.0/mlflow-artifacts/artifacts/models/{name}@")
    mlflow.set_registry_uri(registry)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{made.version}")
    assert (loaded.predict(rows) == estimator.predict(rows)).all()


def test_a_logged_model_uri_is_read_through_the_tracking_server(
    world: dict[str, Any], mlflow_env: Any, logged_run: tuple[str, Any, Any, Any]
) -> None:
    mlflow = mlflow_env
    _run_id, info, _estimator, _rows = logged_run
    assert info.model_uri.startswith("models:/m-")
    name = f"logged-{uuid.uuid4().hex[:8]}"
    _client, made = _register(mlflow, world["servers"]["tracked"].url, info.model_uri, name)
    with SqlStore(world["db"], actor="t") as db:
        artifact = db.get_version(name, int(made.version)).artifact
    assert artifact.format == BUNDLE_FORMAT
    open_store(str(world["artifacts"])).verify(artifact)


@pytest.mark.parametrize("server", ["untracked", "tracking-down"])
def test_without_a_reachable_tracking_server_a_run_uri_stays_an_external_reference(
    world: dict[str, Any], mlflow_env: Any, server: str, logged_run: tuple[str, Any, Any, Any]
) -> None:
    mlflow = mlflow_env
    run_id, _info, _estimator, _rows = logged_run
    registry = world["servers"][server].url
    name = f"external-{server}-{uuid.uuid4().hex[:6]}"
    source = f"runs:/{run_id}/model"
    client, made = _register(mlflow, registry, source, name)
    assert made.source == source
    assert client.get_model_version_download_uri(name, made.version) == source
    with SqlStore(world["db"], actor="t") as db:
        assert db.get_version(name, int(made.version)).artifact.format == EXTERNAL_FORMAT


def test_the_tracking_server_itself_answered(world: dict[str, Any]) -> None:
    """The fixture is a real MLflow tracking server, not something shaped like one."""
    reply = httpx.get(f"{world['tracking'].url}/api/2.0/mlflow/experiments/search?max_results=5")
    assert reply.status_code == 200
    assert any(e["name"] == "Default" for e in reply.json()["experiments"])
