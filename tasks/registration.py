"""Tasks: upload the model's bytes, then register the version (or queue it durably).

The upload is cached on its inputs (a re-run does not upload again) and content
addressed (uploading the same bytes twice stores them once). Registration carries
an idempotency key derived from the model's sha256, so a retried or re-run
registration returns the version it created. When the registry cannot be reached,
the registration goes into the outbox (fsynced before the task returns) and the
run ends "Queued"; the drain flow delivers it later with the same key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from prefect import task

from registry import RegistryUnavailable, VersionCreate
from registry.models import ArtifactRef
from registry.outbox import Outbox
from tasks.common import BY_INPUTS, RETRY_DELAYS, transient_only
from tasks.settings import RunSettings

GOLDEN_TAG = "golden_sha256"
GOLDEN_SIZE_TAG = "golden_size"


@task(
    name="upload",
    cache_policy=BY_INPUTS,
    persist_result=True,
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=transient_only,
    timeout_seconds=1800,
)
def upload(settings: RunSettings, trained: dict[str, Any]) -> dict[str, Any]:
    """Store the skops file and its golden batch (for health checks) in the artifact store."""
    artifacts = settings.artifacts()
    model = artifacts.put_file(Path(trained["model_path"]), format="skops")
    golden_path = Path(trained["model_path"]).with_suffix(".golden.json")
    golden_path.write_text(json.dumps(trained["golden"]))
    golden = artifacts.put_file(golden_path, format="json")
    return {"model": model.model_dump(), "golden": golden.model_dump()}


@task(
    name="register",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=300,
)
def register(
    settings: RunSettings,
    name: str,
    uploaded: dict[str, Any],
    trained: dict[str, Any],
    dataset: dict[str, Any],
    evaluation: dict[str, Any],
    run_id: str | None = None,
) -> dict[str, Any]:
    """Register the version with all its metadata; queue it if the registry is down.

    Returns ``{"status": "registered", "version": N, "key": ...}`` or
    ``{"status": "queued", "key": ..., "reason": ...}``.
    """
    artifact = ArtifactRef.model_validate(uploaded["model"])
    meta = version_metadata(name, artifact, uploaded, trained, dataset, evaluation, run_id)
    key = meta.idempotency_key
    try:
        store = settings.connect()
        try:
            version = store.register(name, artifact, meta)
        finally:
            store.close()
    except RegistryUnavailable as exc:
        Outbox(settings.outbox_path).enqueue(name, artifact, meta)
        return {
            "status": "queued",
            "key": key,
            "reason": str(exc),
            "outbox": str(settings.outbox_path),
        }
    return {"status": "registered", "version": version.version, "key": key}


def version_metadata(
    name: str,
    artifact: ArtifactRef,
    uploaded: dict[str, Any],
    trained: dict[str, Any],
    dataset: dict[str, Any],
    evaluation: dict[str, Any],
    run_id: str | None,
) -> VersionCreate:
    """Everything the registry keeps about a trained version, as ``meta.json`` would say it."""
    metrics = {
        k: float(v) for k, v in {**trained.get("metrics", {}), **evaluation["metrics"]}.items()
    }
    signature = trained["signature"]
    return VersionCreate.parse(
        {
            "metrics": metrics,
            "params": {k: v for k, v in trained["params"].items() if _scalar(v)},
            "tags": {
                GOLDEN_TAG: uploaded["golden"]["sha256"],
                GOLDEN_SIZE_TAG: str(uploaded["golden"]["size"]),
                "pipeline": "retrain",
                "staging_gate": "passed" if evaluation["gate"]["passed"] else "refused",
            },
            "signature": signature,
            "lineage": {
                "datasets": [dataset["lineage"]],
                "feature_pipeline": signature.get("preprocessing_version"),
                "code": _code_ref(),
            },
            "environment": trained["environment"],
            "run_id": run_id,
            "idempotency_key": f"retrain:{name}:{artifact.sha256}",
        }
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _code_ref() -> dict[str, str] | None:
    """The commit of the code that trained the model, when it runs from a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 2:
        return None
    return {"commit": out[0], "branch": out[1]}
