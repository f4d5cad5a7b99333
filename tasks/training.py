"""Tasks: train a candidate, and evaluate it against what serves in production."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import task

from registry import NotFound, RegistryStore, RegistryUnavailable
from tasks.common import BY_INPUTS, RETRY_DELAYS, transient_only
from tasks.settings import RunSettings


@task(
    name="train",
    cache_policy=BY_INPUTS,
    persist_result=True,
    retries=1,
    retry_delay_seconds=RETRY_DELAYS[:1],
    retry_condition_fn=transient_only,
    timeout_seconds=3600,
)
def train(
    settings: RunSettings, dataset: dict[str, Any], params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """Fit the model on the training part of the data set; return the model file and facts.

    Cached on its inputs (the data set's fingerprint, params, seed, registry home and
    this code): a re-run of a failed run finds the model already trained.
    """
    from registry.pipeline import data, training

    frame, _ = data.load_dataset(Path(dataset["path"]))
    train_df, _ = data.split(frame)
    out_dir = settings.work_root / f"train-{uuid.uuid4().hex[:12]}"
    return training.train_model(train_df, params, seed=seed, out_dir=out_dir).to_dict()


@task(
    name="evaluate",
    retries=1,
    retry_delay_seconds=RETRY_DELAYS[:1],
    retry_condition_fn=transient_only,
    timeout_seconds=900,
)
def evaluate(
    settings: RunSettings,
    name: str,
    dataset: dict[str, Any],
    trained: dict[str, Any],
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics of the candidate and of the production version on the same holdout, and
    the None→Staging gate's verdict (recorded in the registry once the version exists)."""
    from registry.pipeline import data, evaluation

    frame, _ = data.load_dataset(Path(dataset["path"]))
    _, holdout = data.split(frame)
    metrics = evaluation.evaluate_model(
        trained["model_path"], trained["sha256"], trained["size"], holdout
    )
    production, note = _production_baseline(settings, name, holdout)
    gate = evaluation.staging_gate(
        metrics,
        None if production is None else production["metrics"],
        evaluation.GateThresholds.from_mapping(thresholds),
    )
    return {
        "metrics": metrics,
        "production": production,
        "gate": {"passed": gate.passed, "reasons": list(gate.reasons)},
        "note": note,
        "thresholds": thresholds or {},
    }


def _production_baseline(
    settings: RunSettings, name: str, holdout: Any
) -> tuple[dict[str, Any] | None, str]:
    """The production version evaluated on ``holdout``, or None and why not."""
    try:
        store = settings.connect()
    except RegistryUnavailable as exc:
        return None, f"registry unreachable, compared with the thresholds only: {exc}"
    try:
        return _evaluate_production(settings, store, name, holdout)
    except RegistryUnavailable as exc:
        return None, f"registry unreachable, compared with the thresholds only: {exc}"
    finally:
        store.close()


def _evaluate_production(
    settings: RunSettings, store: RegistryStore, name: str, holdout: Any
) -> tuple[dict[str, Any] | None, str]:
    from registry.pipeline import evaluation

    try:
        production = store.get_model(name).production
    except NotFound:
        production = None
    if production is None:
        return None, "no version in Production yet: compared with the thresholds only"
    ref = store.get_version(name, production).artifact
    path = local_copy(settings, ref)
    metrics = evaluation.evaluate_model(str(path), ref.sha256, ref.size, holdout)
    return {"version": production, "metrics": metrics}, f"compared with production v{production}"


def local_copy(settings: RunSettings, ref: Any, store: Any = None) -> Path:
    """A verified local file of an artifact (downloaded once per content digest)."""
    dest = settings.work_root / "artifacts" / f"{ref.sha256}.{ref.format}"
    if not dest.exists():
        (store or settings.artifacts()).get_file(ref, dest)
    return dest
