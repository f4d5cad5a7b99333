"""Tasks: load the dated data set, and validate it before anything trains on it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from tasks.common import RETRY_DELAYS, transient_only
from tasks.settings import RunSettings


@task(
    name="load-data",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=300,
)
def load_data(
    settings: RunSettings,
    as_of: date,
    *,
    rows: int,
    seed: int,
    data_path: str | None = None,
) -> dict[str, Any]:
    """The data set as of ``as_of`` (generated once if missing), or the file given.

    Returns its path and its lineage record (name, version, fingerprint, rows, dates).
    """
    from registry.pipeline import data

    if data_path is not None:
        path = Path(data_path)
    else:
        path = data.ensure_dataset(settings.data_root, as_of, rows=rows, seed=seed)
    _, lineage = data.load_dataset(path)
    return {"path": str(path), "lineage": lineage}


@task(name="validate-data", timeout_seconds=300)
def validate_data(dataset: dict[str, Any]) -> dict[str, Any]:
    """Validate the data set against the expected signature (Great Expectations).

    A failure publishes the report as a Prefect artifact and stops the run.
    """
    from registry.pipeline import data, validation

    frame, _ = data.load_dataset(Path(dataset["path"]))
    report = validation.validate_frame(frame, data.expected_signature())
    if not report.success:
        create_markdown_artifact(
            key="data-validation",
            markdown=report.to_markdown(),
            description=f"validation of {dataset['path']}",
        )
        raise validation.DataValidationFailed(report)
    return {"success": True, "failures": [], "statistics": report.statistics}
