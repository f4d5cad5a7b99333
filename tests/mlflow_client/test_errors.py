"""Errors as the real MLflow client sees them: MLflow's codes and messages for what is
missing or taken, the token's role and its absence, and, over raw HTTP, malformed
requests answered with a 4xx ``{"error_code", "message"}``, never a 5xx (the client
retries those for minutes)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from registry.auth import Role

from .conftest import MlflowServer, SavedModel, register

pytestmark = pytest.mark.filterwarnings(
    # The stage APIs are deprecated in MLflow (since 2.9) but still what teams call.
    "ignore:.*is deprecated since 2.9.0:FutureWarning"
)

API = "/api/2.0/mlflow"


def _code(call: Any, *args: Any, **kwargs: Any) -> RestException:
    with pytest.raises(RestException) as raised:
        call(*args, **kwargs)
    return raised.value


# ---------------------------------------------------------------- missing and taken


def test_an_unknown_model_is_mlflow_s_not_found(client: MlflowClient, name: str) -> None:
    message = f"Registered Model with name={name} not found"
    calls = [
        (client.get_registered_model, (name,)),
        (client.get_latest_versions, (name,)),
        (client.set_registered_model_tag, (name, "k", "v")),
        (client.delete_registered_model_tag, (name, "k")),
        (client.update_registered_model, (name, "description")),
        (client.rename_registered_model, (name, f"{name}-new")),
        (client.delete_registered_model, (name,)),
        (client.create_model_version, (name, "runs:/0123/model")),
        (client.get_model_version_by_alias, (name, "champion")),
        (client.delete_registered_model_alias, (name, "champion")),
    ]
    for call, args in calls:
        error = _code(call, *args)
        assert error.error_code == "RESOURCE_DOES_NOT_EXIST", call.__name__
        assert message in error.message, call.__name__


def test_an_unknown_version_is_mlflow_s_not_found(
    client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    message = f"Model Version (name={name}, version=7) not found"
    calls = [
        (client.get_model_version, (name, "7")),
        (client.get_model_version_download_uri, (name, "7")),
        (client.update_model_version, (name, "7", "d")),
        (client.set_model_version_tag, (name, "7", "k", "v")),
        (client.delete_model_version_tag, (name, "7", "k")),
        (client.delete_model_version, (name, "7")),
        (client.transition_model_version_stage, (name, "7", "Staging")),
        (client.set_registered_model_alias, (name, "candidate", "7")),
    ]
    for call, args in calls:
        error = _code(call, *args)
        assert error.error_code == "RESOURCE_DOES_NOT_EXIST", call.__name__
        assert message in error.message, call.__name__


def test_a_version_that_is_not_a_number_is_mlflow_s_invalid_parameter(
    client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)

    error = _code(client.get_model_version, name, "abc")

    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert "Parameter 'version' must be an integer, got 'abc'" in error.message


def test_creating_an_existing_model_is_resource_already_exists(
    mlflow_env: MlflowServer, client: MlflowClient, name: str
) -> None:
    client.create_registered_model(name, tags={"team": "payments"})
    before = mlflow_env.history(name)

    error = _code(client.create_registered_model, name, tags={"team": "other"})

    assert error.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "already exists" in error.message
    assert client.get_registered_model(name).tags == {"team": "payments"}
    assert mlflow_env.history(name) == before


def test_renaming_onto_an_existing_model_is_resource_already_exists(
    client: MlflowClient, name: str
) -> None:
    client.create_registered_model(name)
    client.create_registered_model(f"{name}-b")

    error = _code(client.rename_registered_model, name, f"{name}-b")

    assert error.error_code == "RESOURCE_ALREADY_EXISTS"
    assert client.get_registered_model(name).name == name


# ---------------------------------------------------------------- tokens and roles


def test_a_reader_reads_but_cannot_create(
    mlflow_env: MlflowServer,
    client: MlflowClient,
    saved_model: SavedModel,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(client, name, saved_model)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_env.token(f"reader-{name}", Role.READER))

    assert client.get_model_version(name, "1").status == "READY"
    error = _code(client.create_registered_model, f"{name}-other")
    assert error.error_code == "PERMISSION_DENIED"
    error = _code(client.create_model_version, name, saved_model.uri)
    assert error.error_code == "PERMISSION_DENIED"
    error = _code(client.set_registered_model_tag, name, "k", "v")
    assert error.error_code == "PERMISSION_DENIED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_env.admin)
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert _code(client.get_registered_model, f"{name}-other").error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )


def test_a_data_scientist_registers_but_does_not_move_stages(
    mlflow_env: MlflowServer, saved_model: SavedModel, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scientist = f"scientist-{name}"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_env.token(scientist, Role.DATA_SCIENTIST))
    client = MlflowClient(registry_uri=mlflow_env.url)

    register(client, name, saved_model)
    error = _code(client.transition_model_version_stage, name, "1", "Staging")

    assert error.error_code == "PERMISSION_DENIED"
    assert client.get_model_version(name, "1").current_stage == "None"
    assert {e.actor for e in mlflow_env.history(name)} == {scientist}


def test_no_token_or_a_wrong_one_is_unauthenticated(
    mlflow_env: MlflowServer, client: MlflowClient, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_registered_model(name)
    for token in (None, "mrt_not-a-token", ""):
        if token is None:
            monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        assert _code(client.get_registered_model, name).error_code == "UNAUTHENTICATED"
        assert _code(client.create_registered_model, f"{name}-x").error_code == "UNAUTHENTICATED"

    answer = httpx.get(f"{mlflow_env.url}{API}/registered-models/get", params={"name": name})
    assert answer.status_code == 401
    assert answer.json()["error_code"] == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_env.admin)
    assert _code(client.get_registered_model, f"{name}-x").error_code == "RESOURCE_DOES_NOT_EXIST"


# ---------------------------------------------------------------- malformed requests


def _malformed(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path under /api/2.0, httpx arguments) for requests no client should send."""
    nested = b'{"name": ' + b"[" * 5000 + b'"x"' + b"]" * 5000 + b"}"
    models, versions = f"{API}/registered-models", f"{API}/model-versions"
    raw = {"headers": {"content-type": "application/json"}}
    return [
        ("POST", f"{models}/create", {"content": b"{not json", **raw}),
        ("POST", f"{models}/create", {"content": b"\xff\xfe\x00", **raw}),
        ("POST", f"{models}/create", {"content": b"", **raw}),
        ("POST", f"{models}/create", {"json": [1, 2]}),
        ("POST", f"{models}/create", {"json": "just a string"}),
        ("POST", f"{models}/create", {"json": {}}),
        ("POST", f"{models}/create", {"json": {"name": 5}}),
        ("POST", f"{models}/create", {"json": {"name": None}}),
        ("POST", f"{models}/create", {"json": {"name": "a\u0000b"}}),
        ("POST", f"{models}/create", {"json": {"name": "../../etc/passwd"}}),
        ("POST", f"{models}/create", {"json": {"name": "x" * 20_000}}),
        ("POST", f"{models}/create", {"content": b'{"name": "\\ud800"}', **raw}),
        ("POST", f"{models}/create", {"json": {"name": f"{name}-t", "tags": "team"}}),
        ("POST", f"{models}/create", {"json": {"name": f"{name}-t", "tags": [{"value": 1}]}}),
        ("POST", f"{models}/create", {"content": nested, **raw}),
        (
            "POST",
            f"{models}/create",
            {"json": {"name": f"{name}-big", "description": "d" * 900_000}},
        ),
        ("POST", f"{models}/create", {"content": b"[" * 2_000_000, **raw}),
        ("PATCH", f"{models}/update", {"json": {"name": name, "description": ["a"]}}),
        ("POST", f"{models}/rename", {"json": {"name": name}}),
        ("POST", f"{models}/rename", {"json": {"name": name, "new_name": "Bad Name!"}}),
        ("DELETE", f"{models}/delete", {}),
        ("GET", f"{models}/get", {}),
        ("GET", f"{models}/get", {"params": {"name": "'; DROP TABLE models; --"}}),
        ("GET", f"{models}/search", {"params": {"max_results": "abc"}}),
        ("GET", f"{models}/search", {"params": {"max_results": "-5"}}),
        ("GET", f"{models}/search", {"params": {"max_results": "100000000"}}),
        ("GET", f"{models}/search", {"params": {"max_results": "99999999999999999999999"}}),
        ("GET", f"{models}/search", {"params": {"page_token": "garbage"}}),
        ("GET", f"{models}/search", {"params": {"page_token": "eyJ4IjogMX0="}}),
        ("GET", f"{models}/search", {"params": {"filter": "name = 'x' OR 1=1"}}),
        ("GET", f"{models}/search", {"params": {"filter": "name = 'x'; DROP TABLE models"}}),
        ("GET", f"{models}/search", {"params": {"filter": "name LIKE "}}),
        ("GET", f"{models}/search", {"params": {"order_by": "secret_column DESC"}}),
        ("GET", f"{models}/search", {"params": {"filter": "(" * 10_000}}),
        ("GET", f"{versions}/search", {"params": {"filter": "version_number > 'abc'"}}),
        ("GET", f"{versions}/search", {"params": {"filter": "tags. = 'x'"}}),
        ("GET", f"{versions}/search", {"params": {"filter": "run_id IN ()"}}),
        ("POST", f"{models}/get-latest-versions", {"json": {"name": name, "stages": "Staging"}}),
        ("GET", f"{models}/get-latest-versions", {"params": {"name": name, "stages": "Prod"}}),
        (
            "POST",
            f"{models}/alias",
            {"json": {"name": name, "alias": "Bad Alias!", "version": "1"}},
        ),
        ("POST", f"{models}/alias", {"json": {"name": name, "alias": "x", "version": "0"}}),
        ("POST", f"{models}/alias", {"json": {"name": name, "alias": "x", "version": [1]}}),
        ("POST", f"{models}/alias", {"json": {"name": name, "alias": "latest", "version": "1"}}),
        ("GET", f"{models}/alias", {"params": {"name": name, "alias": ""}}),
        ("POST", f"{models}/set-tag", {"json": {"name": name, "key": "", "value": "v"}}),
        ("POST", f"{models}/set-tag", {"json": {"name": name, "key": "k" * 10_000, "value": "v"}}),
        ("POST", f"{versions}/create", {"json": {"name": name}}),
        ("POST", f"{versions}/create", {"json": {"name": name, "source": 5}}),
        ("POST", f"{versions}/create", {"json": {"name": name, "source": "s" * 10_000}}),
        ("GET", f"{versions}/get", {"params": {"name": name, "version": "abc"}}),
        ("GET", f"{versions}/get", {"params": {"name": name, "version": "-1"}}),
        ("GET", f"{versions}/get", {"params": {"name": name, "version": "1.5"}}),
        ("GET", f"{versions}/get", {"params": {"name": name, "version": "9" * 40}}),
        ("GET", f"{versions}/get", {"params": {"name": name, "version": "\u0661"}}),
        ("GET", f"{versions}/get", {"params": {"name": name}}),
        ("POST", f"{versions}/transition-stage", {"json": {"name": name, "version": "1"}}),
        (
            "POST",
            f"{versions}/transition-stage",
            {"json": {"name": name, "version": "1", "stage": "Bogus"}},
        ),
        (
            "POST",
            f"{versions}/transition-stage",
            {
                "json": {
                    "name": name,
                    "version": "1",
                    "stage": "Archived",
                    "archive_existing_versions": "x",
                }
            },
        ),
        ("PATCH", f"{versions}/update", {"json": {"name": name, "version": {"v": 1}}}),
        ("DELETE", f"{versions}/delete", {"json": {"name": name, "version": ""}}),
        ("GET", f"{API}/no-such-endpoint", {}),
        ("PUT", f"{models}/create", {"json": {"name": f"{name}-put"}}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/models/../../../etc/passwd", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}@1/../../secret", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}@1/no-such-file", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}@9/MLmodel", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}@abc/MLmodel", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}/MLmodel", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/models/{name}@2/MLmodel", {}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", {"params": {"path": "/etc"}}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", {"params": {"path": f"models/{name}@1/.."}}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", {"params": {"path": f"models/{name}@1/x"}}),
    ]


def test_malformed_requests_get_a_4xx_in_mlflow_s_shape_never_a_5xx(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    client.create_model_version(name, "runs:/0123/model")  # v2: external, no files here
    before = mlflow_env.history(name)
    headers = {"Authorization": f"Bearer {mlflow_env.admin}"}
    problems = []
    with httpx.Client(base_url=mlflow_env.url, headers=headers, timeout=30) as http:
        for method, path, arguments in _malformed(name):
            answer = http.request(method, path, **arguments)
            try:
                body = answer.json()
            except json.JSONDecodeError:
                body = None
            shaped = (
                isinstance(body, dict)
                and isinstance(body.get("error_code"), str)
                and isinstance(body.get("message"), str)
                and "\n" not in body["message"]
            )
            if not (400 <= answer.status_code < 500 and shaped):
                shown = {k: str(v)[:60] for k, v in arguments.items()}
                problems.append(
                    f"{method} {path[:90]} {shown}: {answer.status_code} {answer.text[:200]}"
                )
    assert problems == [], "\n".join(problems)
    assert mlflow_env.history(name) == before  # none of them changed anything
    versions = client.search_model_versions(f"name = '{name}'")  # newest first, as MLflow
    assert [v.version for v in versions] == ["2", "1"]


def test_mlflow_s_known_codes_for_bad_values(
    mlflow_env: MlflowServer, client: MlflowClient, saved_model: SavedModel, name: str
) -> None:
    register(client, name, saved_model)
    cases = [
        (client.create_registered_model, ("Bad Name!",)),
        (client.transition_model_version_stage, (name, "1", "Bogus")),
        (client.set_registered_model_alias, (name, "Bad_Alias", "1")),  # MLflow's client allows it
        (client.search_registered_models, ("name = 'x' OR name = 'y'",)),
        (client.search_model_versions, ("version_number > 'abc'",)),
    ]
    for call, args in cases:
        assert _code(call, *args).error_code == "INVALID_PARAMETER_VALUE", call.__name__
