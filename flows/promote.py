"""The promote flow: the release gates for a version that is already registered
(for example one the drain flow delivered from the outbox).

    stage ─► replicate x region ─► health x region ─► canary ─► [approval] ─► promote
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from flows.release import finish, run_release
from flows.retrain import DEFAULT_MODEL
from flows.runner import task_runner
from registry import Settings


@flow(name="promote", task_runner=task_runner())
def promote_flow(
    version: int,
    model: str = DEFAULT_MODEL,
    reason: str | None = None,
    seed: int = 0,
) -> State[Any]:
    """Promote ``model`` ``version`` to Production if every gate of its release policy
    passes; ``reason`` goes in the audit log."""
    settings = Settings.from_env()
    outcome = run_release(settings, model, version, seed=seed, reason=reason or "promote flow")
    return finish(settings, outcome, title=f"Promotion of {model} v{version}")


if __name__ == "__main__":
    import sys

    promote_flow(int(sys.argv[1]))
