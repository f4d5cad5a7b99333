"""Tasks: upload the model's bytes, then register the version (or queue it durably).

The upload is cached on its inputs and content addressed. Registration carries an
idempotency key derived from the model's sha256, retries while the registry is
unreachable, and then queues to the outbox (fsynced before the task returns); the
run ends "Queued" and the drain flow delivers it later with the same key.
"""

from __future__ import annotations

from datetime import datetime

from prefect import task

from registry import Settings
from registry.pipeline import steps
from registry.pipeline.steps import Dataset, Registration, TrainedModel, Uploaded
from registry.release.checks import EvaluationEvidence
from tasks.common import BY_INPUTS, RETRY_DELAYS, run_origin, transient_only


@task(
    name="upload",
    cache_policy=BY_INPUTS,
    persist_result=True,
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=transient_only,
    timeout_seconds=1800,
)
def upload(settings: Settings, trained: TrainedModel) -> Uploaded:
    """Store the skops file and its golden batch (for health checks) as artifacts."""
    return steps.upload(settings, trained)


# No task retries: ``steps.register`` retries the registry itself, then queues.
@task(name="register", timeout_seconds=300)
def register(
    settings: Settings,
    name: str,
    uploaded: Uploaded,
    trained: TrainedModel,
    dataset: Dataset,
    evaluation: EvaluationEvidence,
    run_id: str | None = None,
    run_started: datetime | None = None,
) -> Registration:
    """Register the version with all its metadata; queue it if the registry stays down."""
    return steps.register(
        settings,
        name,
        uploaded,
        trained,
        dataset,
        evaluation,
        run_id=run_id,
        run_started=run_started,
        origin=run_origin(),
    )
