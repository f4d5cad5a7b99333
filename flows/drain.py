"""The drain flow (every minute): deliver registrations queued in the outbox while the
registry was down, each with its idempotency key, and report what was delivered."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed

from registry import Settings
from registry.outbox import DrainReport, drain_pending
from registry.subjects import deliver_pending


@task(name="drain-outbox", timeout_seconds=600)
def drain_outbox(settings: Settings) -> DrainReport:
    """Deliver the pending registrations (each exactly once, by its idempotency key),
    after the subject manifests noted with them: a retrain is judged on its data's."""
    deliver_pending(settings)
    return drain_pending(settings)


@flow(name="drain")
def drain_flow() -> State[Any]:
    """Deliver the outbox's pending registrations; Completed even when the registry is
    still down (they stay queued for the next run)."""
    settings = Settings.from_env()
    report = drain_outbox(settings)
    rows = [
        {"key": key, "model": model, "version": version, "outcome": "delivered"}
        for key, model, version in report.delivered
    ] + [{"key": key, "model": "", "version": "", "outcome": error} for key, error in report.failed]
    parts = [f"delivered {len(report.delivered)}"]
    if report.failed:
        parts.append(f"failed {len(report.failed)}")
    parts.append(f"{report.remaining} still queued")
    if report.unavailable:
        parts.append("registry unreachable")
    message = "outbox: " + ", ".join(parts)
    if rows:
        create_table_artifact(key="outbox-drain", table=rows, description=message)
    return Completed(message=message, data=report)


if __name__ == "__main__":
    drain_flow()
