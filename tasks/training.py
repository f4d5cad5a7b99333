"""Tasks: train a candidate, and evaluate it against what serves in production."""

from __future__ import annotations

from typing import Any

from prefect import task

from registry import Settings
from registry.pipeline import steps
from registry.pipeline.steps import Dataset, TrainedModel
from registry.release.checks import EvaluationEvidence
from tasks.common import BY_INPUTS, RETRY_DELAYS, transient_only


@task(name="train", cache_policy=BY_INPUTS, persist_result=True, timeout_seconds=3600)
def train(settings: Settings, dataset: Dataset, params: dict[str, Any], seed: int) -> TrainedModel:
    """Fit the model on the training part of the data set.

    Cached on its inputs (the data set's fingerprint, params, seed, settings and this
    code): a re-run of a failed or crashed run finds the model already trained.
    """
    return steps.train(settings, dataset, params, seed)


@task(
    name="evaluate",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=900,
)
def evaluate(
    settings: Settings, name: str, dataset: Dataset, trained: TrainedModel
) -> EvaluationEvidence:
    """Metrics of the candidate and of the production version on the same holdout."""
    return steps.evaluate(settings, name, dataset, trained)
