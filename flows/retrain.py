"""The retrain flow: the whole chain, from data to a gated promotion.

    load data ─► validate ─► train ─► evaluate ─► upload ─► record subjects
        ─► register (or queue) ─► stage ─► replicate x region ─► health x region
        ─► canary ─► [approval] ─► promote

Ends Completed (promoted), Completed "Queued" (the registry was down: the
registration waits in the outbox for the drain flow), Failed "Refused" (a gate
said no: the reasons are in the state message, the registry's history and the
report), or Failed (the data did not validate, or a step broke). Every threshold
comes from the model's release policy in the registry, never from a parameter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed

from flows.release import finish, run_release
from flows.runner import task_runner
from registry import Settings
from registry.pipeline.steps import Registration
from tasks.data import load_data, record_subjects, validate_data
from tasks.registration import register, upload
from tasks.report import artifact_key
from tasks.training import evaluate, train

DEFAULT_MODEL = "fraud-detector"
DEFAULT_ROWS = 20_000


@flow(name="retrain", task_runner=task_runner(), log_prints=False)
def retrain_flow(
    model: str = DEFAULT_MODEL,
    as_of: date | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    data_path: str | None = None,
) -> State[Any]:
    """Retrain ``model`` on the data set as of ``as_of`` (default today) and release it
    if every gate of its release policy passes.

    ``data_path`` trains on that .csv/.parquet file instead of the generated data set;
    ``params`` are training params (e.g. ``{"classifier": "hgb"}``).
    """
    settings = Settings.from_env()
    started = datetime.now(UTC)
    as_of = as_of or date.today()
    dataset = load_data(settings, as_of, rows, seed, data_path)
    validation = validate_data(dataset)
    trained = train(settings, dataset, params or {}, seed)
    evaluation = evaluate(settings, model, dataset, trained)
    uploaded = upload(settings, trained)
    record_subjects(settings, dataset)
    registration = register(
        settings, model, uploaded, trained, dataset, evaluation, _run_id(), started
    )
    if registration.status == "queued" or registration.version is None:
        return _queued(model, registration)
    outcome = run_release(
        settings,
        model,
        registration.version,
        evaluation=evaluation,
        validation=validation.model_dump(mode="json"),
        seed=seed,
        reason=f"retrained on {dataset.lineage.name}@{dataset.lineage.version}",
    )
    title = f"Retrain of {model} as of {as_of.isoformat()}"
    return finish(settings, outcome, title=title, evaluation=evaluation)


def _run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def _queued(model: str, registration: Registration) -> State[Any]:
    message = (
        f"{model}: registry unreachable, registration queued in the outbox"
        f" (key {registration.key}); the drain flow delivers it once the registry is back"
    )
    markdown = (
        f"# Retrain of {model}: registration queued\n\n{message}\n\n"
        f"Registry error: `{registration.error}`\n"
    )
    create_markdown_artifact(
        key=artifact_key("release", model), markdown=markdown, description=message
    )
    return Completed(name="Queued", message=message, data=registration)


if __name__ == "__main__":
    retrain_flow()
