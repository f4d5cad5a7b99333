"""``register_model`` and ``create_model_version`` from the real MLflow client: sources the
server reads (``file://`` and ``s3://`` under its ``--source-root``s) become verified
bundles, others are recorded verbatim as unverified external references that the
release policy keeps out of Production unless it allows them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mlflow
import mlflow.artifacts
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from registry.artifacts.bundle import BUNDLE_FORMAT, read_manifest
from registry.mlflow_api.wire import millis
from registry.models import EXTERNAL_FORMAT, Stage
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

from .conftest import ACTOR, MlflowServer, SavedModel, copy_model, kinds

pytestmark = pytest.mark.filterwarnings(
    # The stage APIs are deprecated in MLflow (since 2.9) but still what teams call.
    "ignore:.*is deprecated since 2.9.0:FutureWarning"
)


def _files(folder: Path) -> dict[str, str]:
    """Each file's path under ``folder`` and the sha256 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def _assert_verified_bundle(server: MlflowServer, name: str, version: int, folder: Path) -> None:
    with server.db() as db:
        artifact = db.get_version(name, version).artifact
    assert artifact.format == BUNDLE_FORMAT
    store = server.artifact_store()
    store.verify(artifact)  # the manifest, then every file: size and sha256 read back
    manifest = read_manifest(store, artifact)
    assert {f.path: f.sha256 for f in manifest.files} == _files(folder)


def test_register_model_from_a_file_uri_makes_a_verified_bundle(
    mlflow_env: MlflowServer, saved_model: SavedModel, name: str, tmp_path: Path
) -> None:
    mv = mlflow.register_model(saved_model.uri, name)

    assert (mv.name, mv.version, mv.status, mv.source) == (name, "1", "READY", saved_model.uri)
    assert mv.current_stage == "None"
    _assert_verified_bundle(mlflow_env, name, 1, saved_model.folder)
    # The client downloads the same bytes from the server (no tracking server involved).
    uri = MlflowClient().get_model_version_download_uri(name, "1")
    assert uri.startswith(f"{mlflow_env.url}/api/2.0/mlflow-artifacts/artifacts/")
    local = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "download"))
    assert _files(Path(local)) == _files(saved_model.folder)
    events = mlflow_env.history(name)
    assert kinds(events) == ["model.created", "version.registered"]
    assert {e.actor for e in events} == {ACTOR}


def test_register_model_from_s3_makes_the_same_verified_bundle(
    mlflow_env: MlflowServer, saved_model: SavedModel, name: str
) -> None:
    source = mlflow_env.upload(saved_model.folder)
    from_file = mlflow.register_model(saved_model.uri, name)
    from_s3 = mlflow.register_model(source, name)

    assert (from_file.version, from_s3.version) == ("1", "2")
    assert (from_s3.status, from_s3.source) == ("READY", source)
    _assert_verified_bundle(mlflow_env, name, 2, saved_model.folder)
    with mlflow_env.db() as db:
        # The same files, content-addressed: the same manifest digest from either place.
        assert db.get_version(name, 2).artifact.sha256 == db.get_version(name, 1).artifact.sha256
    events = mlflow_env.history(name)
    assert kinds(events) == ["model.created", "version.registered", "version.registered"]
    assert [e.version for e in events[1:]] == [1, 2]
    assert {e.actor for e in events} == {ACTOR}


def test_a_version_in_mlflow_s_wire_format(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    made = client.create_model_version(
        name,
        saved_model.uri,
        run_id="0123456789abcdef",
        tags={"dataset": "2026-11"},
        run_link="http://tracking.example/#/runs/0123456789abcdef",
        description="trained on November",
    )

    mv = client.get_model_version(name, made.version)
    with mlflow_env.db() as db:
        stored = db.get_version(name, 1)
    assert mv.version == "1"
    assert (mv.creation_timestamp, mv.last_updated_timestamp) == (
        millis(stored.created_at),
        millis(stored.created_at),
    )
    assert (mv.user_id, mv.run_id, mv.tags) == (ACTOR, "0123456789abcdef", {"dataset": "2026-11"})
    assert mv.run_link == "http://tracking.example/#/runs/0123456789abcdef"
    assert (mv.description, mv.source, mv.status) == (
        "trained on November",
        saved_model.uri,
        "READY",
    )
    assert not mv.status_message  # read and verified: nothing to warn about
    assert client.get_registered_model(name).creation_timestamp > 0


def test_a_plain_absolute_path_is_read_like_a_file_uri(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    mv = client.create_model_version(name, str(saved_model.folder))

    assert (mv.source, mv.status) == (str(saved_model.folder), "READY")
    _assert_verified_bundle(mlflow_env, name, 1, saved_model.folder)


def test_a_single_file_source_is_a_bundle_of_that_file(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    mv = client.create_model_version(name, (saved_model.folder / "MLmodel").as_uri())

    assert mv.status == "READY"
    with mlflow_env.db() as db:
        artifact = db.get_version(name, 1).artifact
    manifest = read_manifest(mlflow_env.artifact_store(), artifact)
    mlmodel = (saved_model.folder / "MLmodel").read_bytes()
    assert [(f.path, f.sha256) for f in manifest.files] == [
        ("MLmodel", hashlib.sha256(mlmodel).hexdigest())
    ]


# ---------------------------------------------------------------- sources it cannot read


def _unreadable_sources(server: MlflowServer, model: SavedModel) -> list[str]:
    outside = copy_model(model, server.outside)
    # Bytes of its own, so anything read from it would be a new object in the store.
    (outside / "marker.txt").write_text(outside.name)
    link = server.sources / f"link-{outside.name}"
    os.symlink(outside, link)  # inside the root by name, outside it in fact
    dotdot = f"{server.sources.as_uri()}/../outside/{outside.name}"
    return [
        "runs:/0123456789abcdef/model",
        "models:/m-0123456789abcdef",
        outside.as_uri(),  # a readable folder, but under no --source-root
        dotdot,  # .. out of the root
        link.as_uri(),
        f"{server.sources.as_uri()}/no-such-model",
        f"s3://{server.bucket}/elsewhere/model",  # the bucket, but not the readable prefix
        "s3://no-such-bucket-here/sources/model",
        "https://example.invalid/models/fraud",
    ]


def _stored(server: MlflowServer) -> set[Path]:
    return {p for p in server.artifacts.rglob("*") if p.is_file()}


def test_a_source_the_server_cannot_read_is_recorded_verbatim_as_external(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    sources = _unreadable_sources(mlflow_env, saved_model)
    stored = _stored(mlflow_env)
    for number, source in enumerate(sources, start=1):
        mv = client.create_model_version(name, source, run_id="0123456789abcdef")
        assert (mv.version, mv.status, mv.source) == (str(number), "READY", source)
        assert "unverified" in (mv.status_message or "")
        assert client.get_model_version(name, mv.version).source == source
        assert client.get_model_version_download_uri(name, mv.version) == source
    with mlflow_env.db() as db:
        artifacts = [db.get_version(name, n).artifact for n in range(1, len(sources) + 1)]
    assert [a.format for a in artifacts] == [EXTERNAL_FORMAT] * len(sources)
    assert [a.uri for a in artifacts] == sources
    assert _stored(mlflow_env) == stored  # nothing was read from any of them
    registered = [e for e in mlflow_env.history(name) if e.kind == "version.registered"]
    assert [(e.version, e.actor, e.to_value) for e in registered] == [
        (n, ACTOR, a.sha256) for n, a in enumerate(artifacts, start=1)
    ]


def test_an_unverified_version_reaches_production_only_when_the_policy_allows_it(
    mlflow_env: MlflowServer, client: MlflowClient, name: str
) -> None:
    client.create_registered_model(name)
    mlflow_env.gate_free(name)
    mv = client.create_model_version(name, "runs:/0123456789abcdef/model")
    client.transition_model_version_stage(name, mv.version, "Staging")

    with pytest.raises(RestException) as refused:
        client.transition_model_version_stage(name, mv.version, "Production")
    assert refused.value.error_code == "INVALID_STATE"
    assert "unverified" in refused.value.message
    assert client.get_model_version(name, mv.version).current_stage == "Staging"
    last = mlflow_env.history(name)[-1]
    assert (last.kind, last.actor, last.version) == ("refused", ACTOR, 1)
    assert any("unverified" in reason for reason in last.details.reasons)

    with SqlStore(mlflow_env.served.db_url, actor="test-admin") as store:
        policy = ReleasePolicy(required=(), allow_unverified=True)
        store.set_policy(name, policy, reason="this team's sources live on its tracking server")
    moved = client.transition_model_version_stage(name, mv.version, "Production")

    assert moved.current_stage == "Production"
    with mlflow_env.db() as db:
        assert db.get_version(name, 1).stage is Stage.PRODUCTION
    last = mlflow_env.history(name)[-1]
    assert (last.kind, last.actor, last.from_value, last.to_value) == (
        "stage",
        ACTOR,
        "Staging",
        "Production",
    )
