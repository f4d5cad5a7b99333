"""The release chain both retrain and promote run for a registered version:

    stage ─► replicate x region ─► health x region ─► canary ─► promote

Regions run concurrently on the flow's task runner. ``promote`` is submitted only
when every task before it completed; otherwise the refusal and its reasons are
recorded instead. Returns the decision the flow reports.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, wait
from prefect.states import Completed, Failed

from registry import GateRefused
from tasks.release import canary, health, promote, refuse_promotion, replicate, stage
from tasks.report import emit_model_event, release_report
from tasks.settings import RunSettings


def run_release(
    settings: RunSettings,
    name: str,
    version: int,
    *,
    evaluation: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    thresholds: dict[str, float] | None = None,
    serving_schema: str | None = None,
    seed: int = 0,
    reason: str | None = None,
) -> dict[str, Any]:
    staged = stage(settings, name, version, evaluation, validation, thresholds)
    if not staged["passed"]:
        reasons = [f"staging gate: {r}" for r in staged["reasons"]]
        refuse_promotion(settings, name, version, reasons, serving_schema, with_gates=False)
        return _decision(name, version, False, reasons, evaluation=evaluation)
    replicas = {r: replicate.submit(settings, name, version, r) for r in settings.regions}
    checks = {r: health.submit(settings, name, version, r, replicas[r]) for r in settings.regions}
    canaried = canary.submit(settings, name, version, seed=seed, wait_for=list(checks.values()))
    upstream: list[PrefectFuture[Any]] = [*replicas.values(), *checks.values(), canaried]
    wait(upstream)
    incomplete = [f for f in upstream if not f.state.is_completed()]
    if incomplete:
        failures = [line for f in incomplete if (line := _failure(f)) is not None]
        failures = failures or [f"{len(incomplete)} task(s) before promote did not complete"]
        reasons = refuse_promotion(settings, name, version, failures, serving_schema)
        return _decision(name, version, False, reasons, evaluation=evaluation)
    promoted = promote.submit(settings, name, version, serving_schema, reason)
    promoted.wait()
    if not promoted.state.is_completed():
        error = promoted.state.result(raise_on_failure=False)
        reasons = list(error.reasons) if isinstance(error, GateRefused) else [str(error)]
        return _decision(name, version, False, reasons, evaluation=evaluation)
    result = promoted.result()
    emit_model_event(
        "model.promoted",
        name,
        {"version": version, "previous": result["previous"], "reason": reason or ""},
    )
    return _decision(name, version, True, [], evaluation=evaluation, previous=result["previous"])


def _failure(future: PrefectFuture[Any]) -> str | None:
    """One line for a task that did not complete; None for one skipped because of another."""
    state = future.state
    if state.is_failed() or state.is_crashed():
        error = state.result(raise_on_failure=False)
        return str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return None


def _decision(
    name: str,
    version: int,
    promoted: bool,
    reasons: list[str],
    *,
    evaluation: dict[str, Any] | None,
    previous: int | None = None,
) -> dict[str, Any]:
    if promoted:
        was = f" (was v{previous})" if previous is not None else " (first release)"
        summary = f"{name} v{version} promoted to Production{was}"
    else:
        summary = f"{name} v{version} not promoted: {reasons[0] if reasons else 'refused'}"
    return {
        "model": name,
        "version": version,
        "promoted": promoted,
        "previous": previous,
        "reasons": reasons,
        "summary": summary,
        "evaluation": evaluation,
    }


def finish(settings: RunSettings, decision: dict[str, Any], *, title: str) -> State[Any]:
    """Publish the report and end the flow: Completed when promoted, else Failed "Refused"."""
    release_report(
        settings,
        decision["model"],
        decision["version"],
        title=title,
        decision={"summary": decision["summary"], "reasons": decision["reasons"]},
        evaluation=decision["evaluation"],
    )
    if decision["promoted"]:
        return Completed(message=decision["summary"], data=decision)
    error = GateRefused(decision["summary"], tuple(decision["reasons"]))
    return Failed(name="Refused", message=decision["summary"], data=error)
