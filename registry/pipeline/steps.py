"""The example workload's steps as the retrain flow runs them: typed values in and out.

    load ─► validate ─► train ─► evaluate ─► upload ─► register (or queue) ─► canary

Everything returned is a frozen, JSON-able model: Prefect hashes task inputs for
cache keys and persists results, and a reader (or mypy) sees every field. The
release decisions are not here: staging and promotion are the registry's gates
(``registry.release``); this module only measures and registers.
"""

from __future__ import annotations

import math
import resource
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from registry.config import Settings
from registry.errors import NotFound, RegistryUnavailable, ReleaseCheckFailed
from registry.models import ArtifactRef, DatasetRef, Environment, Origin, Signature, VersionCreate
from registry.release.canary import CanaryEvidence
from registry.release.checks import CheckKind, EvaluationEvidence
from registry.release.steps import GOLDEN_SIZE_TAG, GOLDEN_TAG, local_copy

CANARY_ROWS = 6_000
CANARY_DAYS = 7
REGISTER_ATTEMPTS = 3
REGISTER_DELAYS = (0.5, 1.7)  # jitter written in: retries of concurrent runs do not align


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dataset(_Frozen):
    path: str
    lineage: DatasetRef


class Validation(_Frozen):
    success: bool
    statistics: dict[str, Any]


class SubjectsRecorded(_Frozen):
    """The data subjects of a dataset version, as the registry now knows them.

    ``recorded``: the manifest is in the registry. ``pending``: the registry was
    unreachable; the manifest artifact is stored and noted, and the next run records
    it. ``absent``: the data has no subject column, so no manifest (an erasure can
    then not be closed by a retrain on it).
    """

    status: Literal["recorded", "pending", "absent"]
    dataset: str
    version: str
    subjects: int = 0
    manifest: ArtifactRef | None = None
    error: str | None = None


class TrainingCost(_Frozen):
    """What training cost: wall and CPU seconds of the training thread, and the peak
    resident memory of the process by the end of it (process-wide, in MiB)."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float


class TrainedModel(_Frozen):
    model_path: str
    sha256: str
    size: int
    params: dict[str, Any]
    signature: Signature
    environment: Environment
    golden: dict[str, Any]
    metrics: dict[str, float]
    cost: TrainingCost


class Uploaded(_Frozen):
    model: ArtifactRef
    golden: ArtifactRef


class Registration(_Frozen):
    status: Literal["registered", "queued"]
    key: str
    version: int | None = None
    error: str | None = None  # why it was queued
    outbox: str | None = None


# ---------------------------------------------------------------- data


def load(
    settings: Settings, as_of: date, *, rows: int, seed: int, data_path: str | None = None
) -> Dataset:
    """The data set as of ``as_of`` (generated once if missing), or the file given."""
    from registry.pipeline import data

    path = (
        Path(data_path)
        if data_path is not None
        else data.ensure_dataset(settings.data_root, as_of, rows=rows, seed=seed)
    )
    _, lineage = data.load_dataset(path)
    return Dataset(path=str(path), lineage=DatasetRef.model_validate(lineage))


def validate(dataset: Dataset) -> Validation:
    """Great Expectations on the data set; ``DataValidationFailed`` stops the run."""
    from registry.pipeline import data, validation

    frame, _ = data.load_dataset(Path(dataset.path))
    report = validation.validate_frame(frame, data.expected_signature())
    if not report.success:
        raise validation.DataValidationFailed(report)
    return Validation(success=True, statistics=report.statistics)


def record_subjects(
    settings: Settings, dataset: Dataset, *, origin: Origin | None = None
) -> SubjectsRecorded:
    """Record the subject manifest of the data set (its ``customer_id``s, keyed with the
    registry secret) before anything is registered as trained on it. Manifests noted
    while the registry was down are recorded first."""
    from registry import subjects
    from registry.pipeline import data

    name, version = dataset.lineage.name, dataset.lineage.version
    frame, _ = data.load_dataset(Path(dataset.path))
    if data.SUBJECT not in frame.columns:
        return SubjectsRecorded(status="absent", dataset=name, version=version)
    ids = [str(v) for v in frame[data.SUBJECT].dropna() if str(v).strip()]
    ref, keys = subjects.store_manifest(settings, ids)
    try:
        with settings.connect(origin=origin) as store:
            subjects.record_pending(settings, store)
            store.record_subject_manifest(name, version, ref, keys)
    except RegistryUnavailable as exc:
        subjects.remember_pending(settings, name, version, ref)
        return SubjectsRecorded(
            status="pending", dataset=name, version=version, subjects=len(keys), manifest=ref,
            error=str(exc),
        )  # fmt: skip
    return SubjectsRecorded(
        status="recorded", dataset=name, version=version, subjects=len(keys), manifest=ref
    )


# ---------------------------------------------------------------- training


def train(settings: Settings, dataset: Dataset, params: dict[str, Any], seed: int) -> TrainedModel:
    """Fit the model on the training part of the data set, and measure what it cost."""
    from registry.pipeline import data, training

    started, cpu_started = time.perf_counter(), time.thread_time()
    frame, _ = data.load_dataset(Path(dataset.path))
    train_df, _ = data.split(frame)
    out_dir = settings.work_root / f"train-{uuid.uuid4().hex[:12]}"
    result = training.train_model(train_df, params, seed=seed, out_dir=out_dir)
    cost = TrainingCost(
        wall_s=round(time.perf_counter() - started, 3),
        cpu_s=round(time.thread_time() - cpu_started, 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    return TrainedModel(
        model_path=result.model_path,
        sha256=result.sha256,
        size=result.size,
        params=result.params,
        signature=Signature.model_validate(result.signature),
        environment=Environment.model_validate(result.environment),
        golden=result.golden,
        metrics=result.metrics,
        cost=cost,
    )


def evaluate(
    settings: Settings, name: str, dataset: Dataset, trained: TrainedModel
) -> EvaluationEvidence:
    """Metrics of the candidate, and of the Production version on the same holdout
    (what the staging gate's no-regression rules compare)."""
    from registry.pipeline import data, evaluation

    frame, _ = data.load_dataset(Path(dataset.path))
    _, holdout = data.split(frame)
    metrics = evaluation.evaluate_model(trained.model_path, trained.sha256, trained.size, holdout)
    try:
        production, prod_metrics, note = _production_on(settings, name, holdout)
    except RegistryUnavailable as exc:
        production, prod_metrics = None, None
        note = f"registry unreachable, not compared with production: {exc}"
    return EvaluationEvidence(
        metrics=metrics, production_version=production, production_metrics=prod_metrics, note=note
    )


def _production_on(
    settings: Settings, name: str, holdout: Any
) -> tuple[int | None, dict[str, float] | None, str]:
    from registry.pipeline import evaluation

    with settings.connect() as store:
        try:
            production = store.get_model(name).production
        except NotFound:
            production = None
        if production is None:
            return None, None, "no version in Production yet"
        ref = store.get_version(name, production).artifact
    path = local_copy(settings, ref)
    metrics = evaluation.evaluate_model(str(path), ref.sha256, ref.size, holdout)
    return production, metrics, f"compared with production v{production} on the same holdout"


# ---------------------------------------------------------------- registration


def upload(settings: Settings, trained: TrainedModel) -> Uploaded:
    """Store the skops file and its golden batch (for health checks) as artifacts."""
    import json

    artifacts = settings.artifacts()
    model = artifacts.put_file(Path(trained.model_path), format="skops")
    golden_path = Path(trained.model_path).with_suffix(".golden.json")
    golden_path.write_text(json.dumps(trained.golden))
    return Uploaded(model=model, golden=artifacts.put_file(golden_path, format="json"))


def register(
    settings: Settings,
    name: str,
    uploaded: Uploaded,
    trained: TrainedModel,
    dataset: Dataset,
    evaluation: EvaluationEvidence,
    *,
    run_id: str | None = None,
    run_started: datetime | None = None,
    origin: Origin | None = None,
    delays: Sequence[float] = REGISTER_DELAYS,
) -> Registration:
    """Register the version with all its metadata. While the registry is unreachable it
    is retried (``delays``); after the last attempt the registration goes into the
    durable outbox (fsynced) with the same idempotency key, for the drain flow."""
    from registry.outbox import Outbox

    meta = version_metadata(name, uploaded, trained, dataset, evaluation, run_id, run_started)
    key = meta.idempotency_key or ""
    error: RegistryUnavailable | None = None
    for delay in [*delays, None]:
        try:
            with settings.connect(origin=origin) as store:
                version = store.register(name, uploaded.model, meta)
            return Registration(status="registered", key=key, version=version.version)
        except RegistryUnavailable as exc:
            error = exc
            if delay is not None:
                time.sleep(delay)
    Outbox(settings.outbox_path).enqueue(name, uploaded.model, meta)
    return Registration(
        status="queued", key=key, error=str(error), outbox=str(settings.outbox_path)
    )


def version_metadata(
    name: str,
    uploaded: Uploaded,
    trained: TrainedModel,
    dataset: Dataset,
    evaluation: EvaluationEvidence,
    run_id: str | None,
    run_started: datetime | None = None,
) -> VersionCreate:
    """Everything the registry keeps about a trained version, as ``meta.json`` would say it,
    including what the run cost (training wall/CPU seconds, peak RSS, run duration)."""
    cost = {
        "train_wall_s": trained.cost.wall_s,
        "train_cpu_s": trained.cost.cpu_s,
        "train_peak_rss_mb": trained.cost.peak_rss_mb,
    }
    if run_started is not None:
        elapsed = datetime.now(UTC) - run_started.astimezone(UTC)
        cost["run_duration_s"] = round(elapsed.total_seconds(), 3)
    metrics = {
        k: float(v)
        for k, v in {**trained.metrics, **evaluation.metrics, **cost}.items()
        if math.isfinite(float(v))
    }
    return VersionCreate.parse(
        {
            "metrics": metrics,
            "params": {k: v for k, v in trained.params.items() if _scalar(v)},
            "tags": {
                GOLDEN_TAG: uploaded.golden.sha256,
                GOLDEN_SIZE_TAG: str(uploaded.golden.size),
                "pipeline": "retrain",
            },
            "signature": trained.signature.model_dump(mode="json"),
            "lineage": {
                "datasets": [dataset.lineage.model_dump(mode="json")],
                "feature_pipeline": trained.signature.preprocessing_version,
                "code": _code_ref(),
            },
            "environment": trained.environment.model_dump(mode="json"),
            "run_id": run_id,
            "idempotency_key": f"retrain:{name}:{uploaded.model.sha256}",
        }
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _code_ref() -> dict[str, str] | None:
    """The commit of the code that trained the model, when it runs from a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parent.parent.parent
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


# ---------------------------------------------------------------- the canary


def canary(
    settings: Settings,
    name: str,
    version: int,
    *,
    seed: int = 0,
    rows: int = CANARY_ROWS,
    origin: Origin | None = None,
) -> CanaryEvidence:
    """Candidate and Production on the same traffic (the week after the candidate's
    training data), scored by the policy's pre-declared paired test; recorded as a
    ``canary`` check. ``ReleaseCheckFailed`` when the candidate is not shown non-inferior."""
    from registry.pipeline import data
    from registry.release.canary import run_canary

    with settings.connect(origin=origin) as store:
        candidate = store.get_version(name, version)
        params = store.get_policy(name).policy.canary
        production = store.get_model(name).production
        baseline = None if production in (None, version) else store.get_version(name, production)
        if candidate.signature is None:
            raise ReleaseCheckFailed(f"{name} v{version} has no signature: nothing to replay")
        start = _traffic_start(candidate.lineage.datasets)
        traffic = data.generate_transactions(
            start, start + timedelta(days=CANARY_DAYS - 1), rows=rows, seed=seed + 7919
        )
        evidence = run_canary(
            _model_file(settings, candidate.artifact),
            None if baseline is None else _model_file(settings, baseline.artifact),
            traffic,
            signature=candidate.signature,
            params=params,
            baseline_version=None if baseline is None else baseline.version,
        )
        store.record_check(
            name,
            version,
            CheckKind.CANARY,
            passed=evidence.passed,
            evidence=evidence.model_dump(mode="json"),
        )
    if not evidence.passed:
        raise ReleaseCheckFailed(f"canary failed: {evidence.decision}")
    return evidence


def _model_file(settings: Settings, ref: ArtifactRef) -> Any:
    from registry.release.canary import ModelFile

    return ModelFile(path=local_copy(settings, ref), sha256=ref.sha256, size=ref.size)


def _traffic_start(datasets: Sequence[DatasetRef]) -> date:
    """The day after the training data ends (today if the lineage does not say)."""
    for dataset in datasets:
        if dataset.date_range is not None:
            return dataset.date_range[1] + timedelta(days=1)
    return date.today()
