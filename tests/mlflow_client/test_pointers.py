"""Aliases and stages through the real MLflow client: set, get and delete an alias, a
protected alias and Production behind the release gates (a refusal is the client's
``RestException`` and a ``refused`` event), ``get_latest_versions`` and
``archive_existing_versions``; every move is in ``modelreg history`` as the token's."""

from __future__ import annotations

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException
from release_facts import make_releasable

from registry.models import Event
from registry.store.sql import SqlStore

from .conftest import ACTOR, MlflowServer, SavedModel, register

pytestmark = pytest.mark.filterwarnings(
    # The stage APIs are deprecated in MLflow (since 2.9) but still what teams call.
    "ignore:.*is deprecated since 2.9.0:FutureWarning"
)


def _moves(events: list[Event], kind: str) -> list[tuple[int | None, str | None, str | None]]:
    """(version, from, to) of each event of ``kind``, for stage events, or
    (version, subject, to) for aliases."""
    picked = [e for e in events if e.kind == kind]
    assert {e.actor for e in picked} == {ACTOR}
    if kind == "alias":
        return [(e.version, e.subject, e.to_value) for e in picked]
    return [(e.version, e.from_value, e.to_value) for e in picked]


def _releasable(server: MlflowServer, name: str, version: int) -> None:
    """Record what the default policy's gates ask of ``version`` (replicas, health, canary)."""
    with SqlStore(server.served.db_url, actor="release-pipeline") as store:
        make_releasable(store, name, version)


def _stages(client: MlflowClient, name: str) -> dict[str, str | None]:
    return {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}


# ---------------------------------------------------------------- aliases


def test_alias_set_get_move_and_delete(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)

    client.set_registered_model_alias(name, "candidate", "1")
    by_alias = client.get_model_version_by_alias(name, "candidate")
    assert (by_alias.version, by_alias.aliases) == ("1", ["candidate"])
    client.set_registered_model_alias(name, "candidate", "2")
    assert client.get_model_version_by_alias(name, "candidate").version == "2"
    assert client.get_registered_model(name).aliases == {"candidate": "2"}
    assert client.get_model_version(name, "1").aliases == []

    client.delete_registered_model_alias(name, "candidate")
    assert client.get_registered_model(name).aliases == {}
    with pytest.raises(RestException) as gone:
        client.get_model_version_by_alias(name, "candidate")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _moves(mlflow_env.history(name), "alias") == [
        (1, "candidate", "1"),
        (2, "candidate", "2"),
        (None, "candidate", None),
    ]


def test_deleting_an_alias_that_is_not_there_changes_nothing_as_in_mlflow(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    before = mlflow_env.history(name)

    client.delete_registered_model_alias(name, "candidate")  # MLflow: success, no change

    assert client.get_registered_model(name).aliases == {}
    assert mlflow_env.history(name) == before


def test_a_protected_alias_is_refused_until_the_gates_pass(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.transition_model_version_stage(name, "1", "Staging")  # modelreg: champions are staged

    with pytest.raises(RestException) as refused:
        client.set_registered_model_alias(name, "champion", "1")
    assert refused.value.error_code == "INVALID_STATE"
    assert "replica" in refused.value.message  # the reasons travel to the client
    assert client.get_registered_model(name).aliases == {}
    last = mlflow_env.history(name)[-1]
    assert (last.kind, last.actor, last.version, last.subject) == ("refused", ACTOR, 1, "champion")
    assert last.details.reasons

    _releasable(mlflow_env, name, 1)
    client.set_registered_model_alias(name, "champion", "1")

    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert _moves(mlflow_env.history(name), "alias") == [(1, "champion", "1")]


def test_a_protected_alias_is_not_deleted_through_the_mlflow_api(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.transition_model_version_stage(name, "1", "Staging")
    _releasable(mlflow_env, name, 1)
    client.set_registered_model_alias(name, "champion", "1")

    with pytest.raises(RestException) as refused:
        client.delete_registered_model_alias(name, "champion")

    assert refused.value.error_code == "INVALID_STATE"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    last = mlflow_env.history(name)[-1]
    assert (last.kind, last.actor, last.subject) == ("refused", ACTOR, "champion")


def test_under_a_gate_free_policy_a_protected_alias_moves_as_in_mlflow(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)
    mlflow_env.gate_free(name)

    # Both versions are in None: MLflow lets any version carry any alias.
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")

    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert _moves(mlflow_env.history(name), "alias") == [(1, "champion", "1"), (2, "champion", "2")]


# ---------------------------------------------------------------- stages


def test_none_staging_production_under_a_gate_free_policy(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=2)
    mlflow_env.gate_free(name)

    staged = client.transition_model_version_stage(name, "1", "Staging")
    live = client.transition_model_version_stage(name, "1", "Production")
    assert (staged.current_stage, live.current_stage) == ("Staging", "Production")
    client.transition_model_version_stage(name, "2", "Staging")
    client.transition_model_version_stage(name, "2", "Production")

    # modelreg keeps one Production version: the previous one is archived with the move.
    assert _stages(client, name) == {"1": "Archived", "2": "Production"}
    assert _moves(mlflow_env.history(name), "stage") == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
        (2, "None", "Staging"),
        (1, "Production", "Archived"),
        (2, "Staging", "Production"),
    ]


def test_none_to_production_in_one_call_under_a_gate_free_policy(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    """MLflow moves a version from None straight to Production; a model whose policy has
    no gate behaves the same, through Staging in modelreg's history."""
    register(client, name, saved_model)
    mlflow_env.gate_free(name)

    live = client.transition_model_version_stage(name, "1", "Production")

    assert live.current_stage == "Production"
    assert _moves(mlflow_env.history(name), "stage") == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
    ]


def test_production_is_refused_under_the_default_policy_until_the_facts_exist(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.transition_model_version_stage(name, "1", "Staging")

    with pytest.raises(RestException) as refused:
        client.transition_model_version_stage(name, "1", "Production")
    assert refused.value.error_code == "INVALID_STATE"
    assert "replica" in refused.value.message
    assert client.get_model_version(name, "1").current_stage == "Staging"
    last = mlflow_env.history(name)[-1]
    assert (last.kind, last.actor, last.version) == ("refused", ACTOR, 1)
    assert last.details.reasons

    _releasable(mlflow_env, name, 1)
    live = client.transition_model_version_stage(name, "1", "Production")

    assert live.current_stage == "Production"
    assert _moves(mlflow_env.history(name), "stage") == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
    ]


def test_none_to_production_is_refused_under_the_default_policy(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    _releasable(mlflow_env, name, 1)

    with pytest.raises(RestException) as refused:
        client.transition_model_version_stage(name, "1", "Production")

    assert refused.value.error_code == "INVALID_STATE"
    assert "cannot move from None to Production" in refused.value.message
    assert client.get_model_version(name, "1").current_stage == "None"
    assert [e for e in mlflow_env.history(name) if e.kind == "stage"] == []


def test_get_latest_versions_per_stage_and_for_chosen_stages(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=6)
    mlflow_env.gate_free(name)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "1", "Production")
    for version in ("2", "3"):
        client.transition_model_version_stage(name, version, "Staging")
    client.transition_model_version_stage(name, "4", "Archived")
    # 5 and 6 stay in None

    latest = client.get_latest_versions(name)
    assert {v.current_stage: v.version for v in latest} == {
        "None": "6",
        "Staging": "3",
        "Production": "1",
        "Archived": "4",
    }
    assert len(latest) == 4
    chosen = client.get_latest_versions(name, stages=["Staging", "production"])
    assert sorted((v.current_stage, v.version) for v in chosen) == [
        ("Production", "1"),
        ("Staging", "3"),
    ]
    assert [v.version for v in client.get_latest_versions(name, stages=["Archived"])] == ["4"]
    model = client.get_registered_model(name)
    assert {v.current_stage: v.version for v in model.latest_versions} == {
        "None": "6",
        "Staging": "3",
        "Production": "1",
        "Archived": "4",
    }
    # The same over GET, with the stages as repeated query parameters.
    answer = httpx.get(
        f"{mlflow_env.url}/api/2.0/mlflow/registered-models/get-latest-versions",
        params=[("name", name), ("stages", "Staging"), ("stages", "None")],
        headers={"Authorization": f"Bearer {mlflow_env.admin}"},
    )
    assert answer.status_code == 200
    assert sorted((v["current_stage"], v["version"]) for v in answer.json()["model_versions"]) == [
        ("None", "6"),
        ("Staging", "3"),
    ]
    with pytest.raises(RestException) as bad:
        client.get_latest_versions(name, stages=["Prod"])
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


def test_archive_existing_versions_on_staging(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model, count=4)
    mlflow_env.gate_free(name)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Staging")
    client.transition_model_version_stage(name, "3", "Staging")
    before = len(mlflow_env.history(name))

    moved = client.transition_model_version_stage(
        name, "4", "Staging", archive_existing_versions=True
    )

    assert moved.current_stage == "Staging"
    # The other Staging versions are archived; Production is another stage and stays.
    assert _stages(client, name) == {
        "1": "Production",
        "2": "Archived",
        "3": "Archived",
        "4": "Staging",
    }
    after = mlflow_env.history(name)[before:]
    assert sorted(_moves(after, "stage")) == [
        (2, "Staging", "Archived"),
        (3, "Staging", "Archived"),
        (4, "None", "Staging"),
    ]
