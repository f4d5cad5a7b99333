"""Tasks: load the dated data set, and validate it before anything trains on it."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.artifacts import create_markdown_artifact

from registry import Settings
from registry.pipeline import steps
from registry.pipeline.steps import Dataset, SubjectsRecorded, Validation
from tasks.common import run_origin


@task(name="load-data", timeout_seconds=300)
def load_data(
    settings: Settings, as_of: date, rows: int, seed: int, data_path: str | None = None
) -> Dataset:
    """The data set as of ``as_of`` (generated once if missing), or the file given."""
    return steps.load(settings, as_of, rows=rows, seed=seed, data_path=data_path)


@task(name="validate-data", timeout_seconds=300)
def validate_data(dataset: Dataset) -> Validation:
    """Great Expectations on the data set; a failure publishes its report and stops the run."""
    from registry.pipeline.validation import DataValidationFailed

    try:
        return steps.validate(dataset)
    except DataValidationFailed as failed:
        create_markdown_artifact(
            key="data-validation",
            markdown=failed.report.to_markdown(),
            description=f"validation of {dataset.path}",
        )
        raise


@task(name="record-subjects", timeout_seconds=300)
def record_subjects(settings: Settings, dataset: Dataset) -> SubjectsRecorded:
    """The data set's subject manifest, recorded before a version trained on it is
    registered; noted for the next run if the registry is unreachable."""
    return steps.record_subjects(settings, dataset, origin=run_origin())
