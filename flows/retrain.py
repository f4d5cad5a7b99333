"""The retrain flow: the whole chain, from data to a gated promotion.

    load data ─► validate ─► train ─► evaluate ─► upload ─► register (or queue)
        ─► stage ─► replicate x region ─► health x region ─► canary ─► promote

Ends Completed (promoted), Completed "Queued" (the registry was down: the
registration waits in the outbox for the drain flow), Failed "Refused" (a gate
said no: the reasons are in the state message, the registry and the report), or
Failed (the data did not validate, or a step broke).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed

from flows.release import finish, run_release
from flows.runner import task_runner
from tasks.data import load_data, validate_data
from tasks.registration import register, upload
from tasks.report import artifact_key, metrics_table
from tasks.settings import RunSettings
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
    serving_schema: str | None = None,
    thresholds: dict[str, float] | None = None,
) -> State[Any]:
    """Retrain ``model`` on the data set as of ``as_of`` (default today) and release it
    if every gate passes.

    ``data_path`` trains on that .csv/.parquet file instead of the generated data set;
    ``serving_schema`` is the JSON schema the serving code publishes (default: the
    signature of the current Production version); ``params`` are training params
    (e.g. ``{"classifier": "hgb"}``); ``thresholds`` override the staging gate's.
    """
    settings = RunSettings.from_env()
    as_of = as_of or date.today()
    dataset = load_data(settings, as_of, rows=rows, seed=seed, data_path=data_path)
    validation = validate_data(dataset)
    trained = train(settings, dataset, params or {}, seed)
    evaluation = evaluate(settings, model, dataset, trained, thresholds)
    uploaded = upload(settings, trained)
    registration = register(settings, model, uploaded, trained, dataset, evaluation, _run_id())
    if registration["status"] == "queued":
        return _queued(model, registration, evaluation)
    decision = run_release(
        settings,
        model,
        registration["version"],
        evaluation=evaluation,
        validation=validation,
        thresholds=thresholds,
        serving_schema=serving_schema,
        seed=seed,
        reason=f"retrained on {dataset['lineage']['name']}@{dataset['lineage']['version']}",
    )
    return finish(settings, decision, title=f"Retrain of {model} as of {as_of.isoformat()}")


def _run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def _queued(model: str, registration: dict[str, Any], evaluation: dict[str, Any]) -> State[Any]:
    message = (
        f"{model}: registry unreachable, registration queued in the outbox"
        f" (key {registration['key']}); the drain flow delivers it once the registry is back"
    )
    markdown = "\n".join(
        [
            f"# Retrain of {model}: registration queued",
            "",
            message,
            "",
            f"Registry error: `{registration['reason']}`",
            "",
            *metrics_table(evaluation),
        ]
    )
    create_markdown_artifact(
        key=artifact_key("release", model), markdown=markdown, description=message
    )
    return Completed(name="Queued", message=message, data={"model": model, **registration})


if __name__ == "__main__":
    retrain_flow()
