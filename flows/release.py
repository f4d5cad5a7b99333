"""The release chain both retrain and promote run for a registered version:

    stage ─► replicate x region ─► health x region ─► canary ─► [approval] ─► promote

Regions (the policy's) run concurrently on the flow's task runner. ``promote`` is
submitted only when every task before it completed; otherwise the refusal and its
reasons are recorded instead. Where the policy asks for approvals, the run pauses
(Prefect's wait-for-input) until an approver resumes it from the UI or with
``modelreg approve``, or refuses at the policy's timeout.
"""

from __future__ import annotations

import math
import time
from typing import Any

from prefect import pause_flow_run
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.futures import PrefectFuture, wait
from prefect.input import RunInput
from prefect.states import Completed, Failed

from registry import GateRefused, Settings
from registry.release.checks import EvaluationEvidence
from registry.release.steps import ReleaseOutcome
from tasks.release import (
    approval_status,
    canary,
    health,
    promote,
    read_policy,
    record_approval,
    refuse_promotion,
    replicate,
    request_approval,
    stage,
)
from tasks.report import emit_model_event, release_report

APPROVAL_POLL_S = 2


class Approval(RunInput):
    """What an approver types when resuming a paused release in the Prefect UI."""

    approver: str
    reason: str


def run_release(
    settings: Settings,
    name: str,
    version: int,
    *,
    evaluation: EvaluationEvidence | None = None,
    validation: dict[str, Any] | None = None,
    seed: int = 0,
    reason: str | None = None,
) -> ReleaseOutcome:
    staged = stage(settings, name, version, evaluation, validation, reason)
    if not staged.passed:
        reasons = tuple(f"staging gate: {r}" for r in staged.reasons)
        return ReleaseOutcome(name=name, version=version, promoted=False, reasons=reasons)
    regions = read_policy(settings, name).regions
    replicas = {r: replicate.submit(settings, name, version, r) for r in regions}
    checks = {
        r: health.submit(settings, name, version, r, return_state=False, wait_for=[replicas[r]])
        for r in regions
    }
    canaried = canary.submit(
        settings, name, version, seed, return_state=False, wait_for=list(checks.values())
    )
    upstream: list[PrefectFuture[Any]] = [*replicas.values(), *checks.values(), canaried]
    wait(upstream)
    failures = [line for f in upstream if (line := _failure(f)) is not None]
    if not failures:
        failures = await_approval(settings, name, version)
    if failures:
        refused = refuse_promotion(settings, name, version, failures)
        return ReleaseOutcome(name=name, version=version, promoted=False, reasons=tuple(refused))
    promoted = promote.submit(settings, name, version, reason)
    promoted.wait()
    if not promoted.state.is_completed():
        error = promoted.state.result(raise_on_failure=False)
        reasons = error.reasons if isinstance(error, GateRefused) else (str(error),)
        return ReleaseOutcome(name=name, version=version, promoted=False, reasons=tuple(reasons))
    result = promoted.result()
    if not result.moved:
        return ReleaseOutcome(name=name, version=version, promoted=True, already=True)
    emit_model_event(
        "model.promoted",
        name,
        {"version": version, "previous": result.previous, "reason": reason or ""},
    )
    return ReleaseOutcome(name=name, version=version, promoted=True, previous=result.previous)


def await_approval(settings: Settings, name: str, version: int) -> list[str]:
    """Pause until the approvals the policy asks for are in (none asked: return at once).

    Each resume carries an ``Approval`` (from the UI's form, or from ``modelreg approve``,
    which records the approval first); the registry, not the resume, decides whether it
    counts. Returns why the promotion must not go ahead (empty: approved).
    """
    status = approval_status(settings, name, version)
    if status.missing == 0:
        return []
    request_approval(settings, name, version, status.needed)
    deadline = time.monotonic() + status.timeout_s
    attempt = 0
    while status.missing > 0 and (remaining := deadline - time.monotonic()) > 0:
        attempt += 1
        try:
            answer = pause_flow_run(
                wait_for_input=Approval,
                timeout=max(1, math.ceil(remaining)),
                poll_interval=APPROVAL_POLL_S,
                key=f"approval-{version}-{attempt}",
            )
        except FlowPauseTimeout:
            _running_again()
            break
        record_approval(settings, name, version, answer.approver, answer.reason)
        status = approval_status(settings, name, version)
    status = approval_status(settings, name, version)  # one approved while the run slept
    if status.missing == 0:
        return []
    have = ", ".join(status.approvers) or "none"
    return [
        f"no approval within {status.timeout_s:g}s: needs {status.needed} from someone other "
        f"than {status.registrant}, has {len(status.approvers)} ({have})"
    ]


def _running_again() -> None:
    """After a pause timed out, Prefect leaves the run Paused (expired) and would replace
    the state the flow ends with by "never resumed": mark it Running again, so the run
    ends with the refusal (and its reasons) it records."""
    from prefect import get_client
    from prefect.runtime import flow_run
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Running(), force=True)


def _failure(future: PrefectFuture[Any]) -> str | None:
    """One line for a task that did not complete; None for one skipped because of another."""
    state = future.state
    if state.is_failed() or state.is_crashed():
        error = state.result(raise_on_failure=False)
        return str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return None


def finish(
    settings: Settings,
    outcome: ReleaseOutcome,
    *,
    title: str,
    evaluation: EvaluationEvidence | None = None,
) -> State[Any]:
    """Publish the report and end the flow: Completed when promoted, else Failed "Refused"."""
    release_report(
        settings, outcome.name, outcome.version, title, outcome.summary, outcome.reasons, evaluation
    )
    if outcome.promoted:
        return Completed(message=outcome.summary, data=outcome)
    error = GateRefused(outcome.summary, outcome.reasons)
    return Failed(name="Refused", message=outcome.summary, data=error)
