"""modelreg's objects in MLflow's registry wire format (``model_registry.proto`` as JSON).

What the real client depends on, read from ``mlflow-skinny``'s ``rest_store`` and
protos: ``version`` is a string, timestamps are integer milliseconds, a version's
``status`` is ``READY`` (without it the client polls for 300 s and fails), tags and
aliases are lists of objects. MLflow keeps a version's ``source`` verbatim; modelreg
keeps it in the version's ``modelreg.mlflow.source`` tag, which the MLflow side does
not show among the tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from registry.models import EXTERNAL_FORMAT, ModelVersion, RegisteredModel

SOURCE_TAG = "modelreg.mlflow.source"
RUN_LINK_TAG = "modelreg.mlflow.run_link"
HIDDEN_TAG_PREFIX = "modelreg.mlflow."


def millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def registered_model(model: RegisteredModel, latest: Iterable[ModelVersion] = ()) -> dict[str, Any]:
    updated = model.updated_at or model.created_at
    body: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(updated),
        "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
        "aliases": [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(model.aliases.items())
        ],
        "latest_versions": [model_version(v) for v in latest],
    }
    if model.description is not None:
        body["description"] = model.description
    return body


def model_version(version: ModelVersion) -> dict[str, Any]:
    tags = {k: v for k, v in version.tags.items() if not k.startswith(HIDDEN_TAG_PREFIX)}
    body: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.created_at),
        "user_id": version.created_by,
        "current_stage": version.stage.value,
        "source": source_of(version),
        "status": "READY",
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        "aliases": sorted(version.aliases),
    }
    if version.description is not None:
        body["description"] = version.description
    if version.run_id is not None:
        body["run_id"] = version.run_id
    run_link = version.tags.get(RUN_LINK_TAG)
    if run_link is not None:
        body["run_link"] = run_link
    if version.artifact.format == EXTERNAL_FORMAT:
        body["status_message"] = "unverified: an external reference the registry could not read"
    return body


def source_of(version: ModelVersion) -> str:
    """The source the version was created from, as MLflow was given it."""
    return version.tags.get(SOURCE_TAG) or version.artifact.uri


def latest_per_stage(
    versions: Iterable[ModelVersion], stages: Iterable[str] | None = None
) -> list[ModelVersion]:
    """MLflow's ``get-latest-versions``: the newest version in each stage asked for
    (every stage when none is), ordered by stage as MLflow orders them."""
    wanted = {s.lower() for s in stages} if stages else None
    newest: dict[str, ModelVersion] = {}
    for version in versions:
        stage = version.stage.value
        if wanted is not None and stage.lower() not in wanted:
            continue
        best = newest.get(stage)
        if best is None or version.version > best.version:
            newest[stage] = version
    order = ["None", "Staging", "Production", "Archived"]
    return [newest[s] for s in order if s in newest]
