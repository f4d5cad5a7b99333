"""The promote flow: the release gates for a version that is already registered
(for example one the drain flow delivered from the outbox).

    stage ─► replicate x region ─► health x region ─► canary ─► promote
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from flows.release import finish, run_release
from flows.retrain import DEFAULT_MODEL
from flows.runner import task_runner
from tasks.settings import RunSettings


@flow(name="promote", task_runner=task_runner())
def promote_flow(
    version: int,
    model: str = DEFAULT_MODEL,
    serving_schema: str | None = None,
    reason: str | None = None,
    thresholds: dict[str, float] | None = None,
    seed: int = 0,
) -> State[Any]:
    """Promote ``model`` ``version`` to Production if every gate passes.

    ``serving_schema``: path of the JSON schema the serving code publishes (default:
    the signature of the current Production version); ``reason`` goes in the audit log.
    """
    settings = RunSettings.from_env()
    decision = run_release(
        settings,
        model,
        version,
        thresholds=thresholds,
        serving_schema=serving_schema,
        seed=seed,
        reason=reason or "promote flow",
    )
    return finish(settings, decision, title=f"Promotion of {model} v{version}")


if __name__ == "__main__":
    import sys

    promote_flow(int(sys.argv[1]))
