"""``mlflow.pyfunc.load_model`` of a scikit-learn model registered in modelreg, by alias
and by stage, downloaded from the server and predicting what the estimator predicts;
and ``copy_model_version``, which sends ``models:/NAME/V`` as the new version's source.

SQLite only: these flows add the client's downloads and loads to what the two-backend
modules already check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from release_facts import make_releasable

from registry.artifacts.bundle import BUNDLE_FORMAT
from registry.store.sql import SqlStore

from .conftest import ACTOR, SQLITE_ONLY, MlflowServer, SavedModel, copy_model, kinds, register

pytestmark = [
    SQLITE_ONLY,
    # The stage APIs are deprecated in MLflow (since 2.9) but still what teams call.
    pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning"),
]


def _predicts_as_the_estimator(uri: str, model: SavedModel) -> None:
    loaded = mlflow.pyfunc.load_model(uri)
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(model.rows)), model.estimator.predict(model.rows)
    )


def test_load_model_by_champion_alias_and_production_stage(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.transition_model_version_stage(name, "1", "Staging")
    with SqlStore(mlflow_env.served.db_url, actor="release-pipeline") as store:
        make_releasable(store, name, 1)
    client.transition_model_version_stage(name, "1", "Production")
    client.set_registered_model_alias(name, "champion", "1")

    _predicts_as_the_estimator(f"models:/{name}@champion", saved_model)
    _predicts_as_the_estimator(f"models:/{name}/Production", saved_model)

    moves = [(e.kind, e.actor) for e in mlflow_env.history(name) if e.kind in ("stage", "alias")]
    assert moves == [("stage", ACTOR), ("stage", ACTOR), ("alias", ACTOR)]


def test_load_model_registered_from_s3(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    client.create_model_version(name, mlflow_env.upload(saved_model.folder))
    client.set_registered_model_alias(name, "candidate", "1")

    _predicts_as_the_estimator(f"models:/{name}@candidate", saved_model)
    _predicts_as_the_estimator(f"models:/{name}/1", saved_model)


def test_copy_model_version_is_a_verified_version_with_the_same_bytes(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.set_registered_model_alias(name, "candidate", "1")
    target = f"{name}-copy"

    copied = client.copy_model_version(f"models:/{name}/1", target)
    again = client.copy_model_version(f"models:/{name}@candidate", target)

    assert (copied.name, copied.version, copied.status) == (target, "1", "READY")
    assert (again.version, again.source) == ("2", f"models:/{name}/1")
    with mlflow_env.db() as db:
        original = db.get_version(name, 1).artifact
        copies = [db.get_version(target, n).artifact for n in (1, 2)]
    assert original.format == BUNDLE_FORMAT
    assert [(c.format, c.sha256, c.size) for c in copies] == [
        (BUNDLE_FORMAT, original.sha256, original.size)
    ] * 2
    mlflow_env.artifact_store().verify(copies[0])
    _predicts_as_the_estimator(f"models:/{target}/1", saved_model)
    events = mlflow_env.history(target)
    assert kinds(events) == ["model.created", "version.registered", "version.registered"]
    assert {e.actor for e in events} == {ACTOR}


def test_a_tampered_stored_file_is_never_served(
    mlflow_env: MlflowServer,
    client: MlflowClient,
    saved_model: SavedModel,
    name: str,
    tmp_path: Path,
) -> None:
    folder = copy_model(saved_model, mlflow_env.sources)
    marker = folder / "marker.txt"
    marker.write_text(f"bytes of {name} alone\n")  # an object no other version shares
    client.create_registered_model(name)
    client.create_model_version(name, folder.as_uri())
    stored = mlflow_env.artifact_store().local_path(hashlib.sha256(marker.read_bytes()).hexdigest())
    stored.chmod(0o644)
    stored.write_text(f"bytes of {name} ALONE\n")  # same length, other bytes

    answer = httpx.get(
        f"{mlflow_env.url}/api/2.0/mlflow-artifacts/artifacts/models/{name}@1/marker.txt",
        headers={"Authorization": f"Bearer {mlflow_env.admin}"},
    )
    assert answer.status_code == 409  # a 4xx: the client must not retry it for minutes
    assert answer.json()["error_code"] == "INVALID_STATE"
    assert b"ALONE" not in answer.content
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(name, "1"), dst_path=str(tmp_path / "dl")
        )
    assert all(b"ALONE" not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
