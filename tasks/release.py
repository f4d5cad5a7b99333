"""Tasks: stage, replicate and health-check per region, canary, approvals, promotion.

Each is one call of a typed library step. Every outcome is recorded in the
registry (replica rows, checks, events), and the promotion gate re-reads those
facts in the flip's transaction instead of trusting what a flow remembers. A step
whose check fails records it first and then raises ``ReleaseCheckFailed``, so the
UI shows which region or check broke and promote is not submitted.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from registry import Settings
from registry.pipeline import steps as workload
from registry.release import steps
from registry.release.canary import CanaryEvidence
from registry.release.checks import EvaluationEvidence
from registry.release.health import HealthEvidence
from registry.release.policy import ApprovalStatus, ReleasePolicy
from registry.release.steps import Promotion, Rollback, StageOutcome
from registry.release_models import Replica
from tasks.common import RETRY_DELAYS, run_origin, transient_only

# Tasks that talk to the registry are retried only while it (or the model's promotion
# lock) or the artifact store is unavailable: twice, after the delays below.
DELAYS = RETRY_DELAYS[:2]


@task(
    name="read-policy",
    timeout_seconds=60,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def read_policy(settings: Settings, name: str) -> ReleasePolicy:
    """The model's release policy: its regions, canary parameters and approval rule."""
    return steps.policy(settings, name)


@task(
    name="stage",
    timeout_seconds=300,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def stage(
    settings: Settings,
    name: str,
    version: int,
    evaluation: EvaluationEvidence | None = None,
    validation: dict[str, object] | None = None,
    reason: str | None = None,
) -> StageOutcome:
    """The None -> Staging gate of the model's policy (the store decides and records)."""
    return steps.stage(
        settings,
        name,
        version,
        evaluation=evaluation,
        validation=validation,
        reason=reason,
        origin=run_origin(),
    )


# No task retries: replication retries each copy itself, with backoff and jitter.
@task(name="replicate")
def replicate(settings: Settings, name: str, version: int, region: str) -> Replica:
    """Copy the version's bytes into one region and read them back (a replica row)."""
    return steps.replicate(settings, name, version, region, origin=run_origin())


@task(name="health")
def health(settings: Settings, name: str, version: int, region: str) -> HealthEvidence:
    """Load the region's replica in a fresh process and check its golden predictions."""
    return steps.health(settings, name, version, region, origin=run_origin())


@task(name="canary", retries=2, retry_delay_seconds=DELAYS, retry_condition_fn=transient_only)
def canary(settings: Settings, name: str, version: int, seed: int = 0) -> CanaryEvidence:
    """Candidate and Production on the same traffic, the policy's paired test."""
    return workload.canary(settings, name, version, seed=seed, origin=run_origin())


@task(
    name="approval-status",
    timeout_seconds=60,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def approval_status(settings: Settings, name: str, version: int) -> ApprovalStatus:
    return steps.approval_status(settings, name, version)


@task(
    name="request-approval",
    timeout_seconds=60,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def request_approval(settings: Settings, name: str, version: int, needed: int) -> None:
    """Log that this run waits for approvals (``modelreg approve`` resumes it)."""
    steps.request_approval(settings, name, version, needed, origin=run_origin())


@task(
    name="record-approval",
    timeout_seconds=60,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def record_approval(
    settings: Settings, name: str, version: int, approver: str, reason: str
) -> str | None:
    """Record an approval given in the Prefect UI; why it does not count, if it does not."""
    return steps.record_approval(settings, name, version, approver, reason, origin=run_origin())


@task(name="promote", retries=2, retry_delay_seconds=DELAYS, retry_condition_fn=transient_only)
def promote(settings: Settings, name: str, version: int, reason: str | None = None) -> Promotion:
    """The promotion gate, in the flip's transaction, under the model's promotion lock."""
    return steps.promote(settings, name, version, reason=reason, origin=run_origin())


@task(
    name="refuse-promotion",
    timeout_seconds=300,
    retries=2,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def refuse_promotion(
    settings: Settings, name: str, version: int, failures: Sequence[str]
) -> list[str]:
    """Record why the promotion did not run: the failed steps and what the gate says now."""
    return list(steps.refuse(settings, name, version, failures, origin=run_origin()).reasons)


@task(name="rollback", retries=2, retry_delay_seconds=DELAYS, retry_condition_fn=transient_only)
def rollback(settings: Settings, name: str, to: int | None, reason: str) -> Rollback:
    """One compare-and-swap flip back to the last good version (or ``to``)."""
    return steps.rollback(settings, name, reason, to=to, origin=run_origin())
