"""Tags, descriptions, rename and delete through the real MLflow client, each change in
``modelreg history`` as the token's; deletes that modelreg's retention rules forbid are
refused (``INVALID_STATE``) and change nothing, and version numbers are never reused."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from registry.models import Event

from .conftest import ACTOR, MlflowServer, SavedModel, kinds, register

pytestmark = pytest.mark.filterwarnings(
    # The stage APIs are deprecated in MLflow (since 2.9) but still what teams call.
    "ignore:.*is deprecated since 2.9.0:FutureWarning"
)


def _tag_events(events: list[Event]) -> list[tuple[int | None, str | None, str | None, str | None]]:
    picked = [e for e in events if e.kind == "tags"]
    assert {e.actor for e in picked} == {ACTOR}
    return [(e.version, e.subject, e.from_value, e.to_value) for e in picked]


def _versions(client: MlflowClient, name: str) -> list[str]:
    found = client.search_model_versions(f"name = '{name}'")
    return sorted((v.version for v in found), key=int)


def _live(client: MlflowClient, server: MlflowServer, name: str) -> None:
    """Version 1 of ``name`` to Production under a gate-free policy."""
    server.gate_free(name)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "1", "Production")


# ---------------------------------------------------------------- tags and descriptions


def test_model_tags_set_and_delete(
    mlflow_env: MlflowServer, client: MlflowClient, name: str
) -> None:
    client.create_registered_model(name, tags={"team": "payments"})
    client.set_registered_model_tag(name, "owner", "alice")
    client.set_registered_model_tag(name, "owner", "bob")
    assert client.get_registered_model(name).tags == {"team": "payments", "owner": "bob"}

    client.delete_registered_model_tag(name, "team")

    assert client.get_registered_model(name).tags == {"owner": "bob"}
    assert _tag_events(mlflow_env.history(name)) == [
        (None, "owner", None, "alice"),
        (None, "owner", "alice", "bob"),
        (None, "team", "payments", None),
    ]


def test_version_tags_set_and_delete(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name)
    client.create_model_version(name, saved_model.uri, tags={"dataset": "2026-11"})
    client.set_model_version_tag(name, "1", "validated", "yes")
    assert client.get_model_version(name, "1").tags == {"dataset": "2026-11", "validated": "yes"}

    client.delete_model_version_tag(name, "1", "dataset")

    assert client.get_model_version(name, "1").tags == {"validated": "yes"}
    assert _tag_events(mlflow_env.history(name)) == [
        (1, "validated", None, "yes"),
        (1, "dataset", "2026-11", None),
    ]


def test_deleting_a_tag_that_is_not_there_changes_nothing_as_in_mlflow(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    """MLflow's server answers a delete of a missing tag with success and no change;
    scripts that remove a tag "if present" rely on it."""
    register(client, name, saved_model)
    before = mlflow_env.history(name)

    client.delete_registered_model_tag(name, "never-set")
    client.delete_model_version_tag(name, "1", "never-set")

    assert client.get_registered_model(name).tags == {}
    assert client.get_model_version(name, "1").tags == {}
    assert mlflow_env.history(name) == before


def test_the_registry_s_own_tag_keys_are_refused(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    mv = register(client, name, saved_model)[0]
    before = mlflow_env.history(name)

    with pytest.raises(RestException) as refused:
        client.set_model_version_tag(name, mv, "modelreg.mlflow.source", "s3://elsewhere")

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_model_version(name, mv).source == saved_model.uri
    assert mlflow_env.history(name) == before


def test_descriptions_and_which_changes_bump_the_model(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    client.create_registered_model(name, description="first")
    client.update_registered_model(name, description="fraud scores for card payments")
    assert client.get_registered_model(name).description == "fraud scores for card payments"
    client.create_model_version(name, saved_model.uri)
    registered = client.get_registered_model(name).last_updated_timestamp

    # MLflow: editing a version's description does not bump the registered model.
    client.update_model_version(name, "1", description="trained on November")

    assert client.get_model_version(name, "1").description == "trained on November"
    assert client.get_registered_model(name).last_updated_timestamp == registered
    descriptions = [e for e in mlflow_env.history(name) if e.kind == "description"]
    assert [(e.version, e.to_value, e.actor) for e in descriptions] == [
        (None, "fraud scores for card payments", ACTOR),
        (1, "trained on November", ACTOR),
    ]
    client.transition_model_version_stage(name, "1", "Staging")
    assert client.get_registered_model(name).last_updated_timestamp >= registered


# ---------------------------------------------------------------- rename


def test_rename_registered_model(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)
    new_name = f"{name}-renamed"

    client.rename_registered_model(name, new_name)  # MLflow's client returns None here

    assert client.get_registered_model(new_name).name == new_name
    assert _versions(client, new_name) == ["1", "2"]
    assert client.get_model_version(new_name, "2").name == new_name
    with pytest.raises(RestException) as gone:
        client.get_registered_model(name)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    last = mlflow_env.history(new_name)[-1]
    assert (last.kind, last.from_value, last.to_value, last.actor) == (
        "model.renamed",
        name,
        new_name,
        ACTOR,
    )


def test_rename_is_refused_while_a_version_serves(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    _live(client, mlflow_env, name)
    before = mlflow_env.history(name)

    with pytest.raises(RestException) as refused:
        client.rename_registered_model(name, f"{name}-renamed")

    assert refused.value.error_code == "INVALID_STATE"
    assert client.get_registered_model(name).name == name
    assert mlflow_env.history(name) == before


# ---------------------------------------------------------------- delete


def test_delete_a_version_that_never_served_and_its_number_is_not_reused(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=3)

    client.delete_model_version(name, "3")
    client.delete_model_version(name, "2")

    assert _versions(client, name) == ["1"]
    with pytest.raises(RestException) as gone:
        client.get_model_version(name, "3")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version(name, saved_model.uri).version == "4"
    deleted = [e for e in mlflow_env.history(name) if e.kind == "version.deleted"]
    assert [(e.version, e.actor) for e in deleted] == [(3, ACTOR), (2, ACTOR)]


@pytest.mark.parametrize("why", ["serves", "served", "alias"])
def test_delete_is_refused_for_a_version_modelreg_keeps(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str, why: str
) -> None:
    register(client, name, saved_model, count=2)
    if why in ("serves", "served"):
        _live(client, mlflow_env, name)
    if why == "served":  # v2 replaces it: v1 is Archived, but it once served
        client.transition_model_version_stage(name, "2", "Staging")
        client.transition_model_version_stage(name, "2", "Production")
    if why == "alias":
        client.set_registered_model_alias(name, "candidate", "1")
    before = mlflow_env.history(name)
    stage = client.get_model_version(name, "1").current_stage

    with pytest.raises(RestException) as refused:
        client.delete_model_version(name, "1")

    assert refused.value.error_code == "INVALID_STATE"
    assert "cannot be deleted" in refused.value.message
    assert _versions(client, name) == ["1", "2"]
    assert client.get_model_version(name, "1").current_stage == stage
    assert mlflow_env.history(name) == before


def test_delete_registered_model(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)
    client.set_registered_model_tag(name, "team", "payments")

    client.delete_registered_model(name)

    with pytest.raises(RestException) as gone:
        client.get_registered_model(name)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_model_versions(f"name = '{name}'") == []
    with mlflow_env.db() as db:
        events = db.events(model=name)
    assert kinds(events)[-1] == "model.deleted"
    assert events[-1].actor == ACTOR
    # The name is free again; the new model starts from version 1.
    assert register(client, name, saved_model) == ["1"]


def test_delete_registered_model_is_refused_while_a_version_serves(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)
    _live(client, mlflow_env, name)
    before = mlflow_env.history(name)

    with pytest.raises(RestException) as refused:
        client.delete_registered_model(name)

    assert refused.value.error_code == "INVALID_STATE"
    assert _versions(client, name) == ["1", "2"]
    assert mlflow_env.history(name) == before
