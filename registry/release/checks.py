"""The kinds of check a version records, and the typed evidence the gates read back.

Evidence is stored as JSON with the check. What one layer writes and another reads
is a field here, never a dict key: the canary's baseline version, the evaluation's
production metrics, an approval's reason.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class CheckKind(StrEnum):
    """Recorded checks. Replicas are rows of their own, not checks."""

    VALIDATION = "validation"  # the training data passed its expectations
    EVALUATION = "evaluation"  # holdout metrics of the candidate (and of Production)
    HEALTH = "health"  # a replica loaded in a fresh process and predicted correctly
    CANARY = "canary"  # the paired test on shadow traffic
    APPROVAL = "approval"  # a person signed off (recorded by that person)


class _Evidence(BaseModel):
    # Read side: tolerate fields a newer writer added.
    model_config = ConfigDict(frozen=True, extra="ignore")


class CanaryVerdict(_Evidence):
    """What the promotion gate reads of a canary's evidence."""

    decision: str = ""
    baseline_version: int | None = None  # the Production version it was compared with


class EvaluationEvidence(_Evidence):
    """Holdout metrics: the candidate's, and Production's on the same holdout."""

    metrics: dict[str, float]
    production_version: int | None = None
    production_metrics: dict[str, float] | None = None
    note: str = ""


class HealthVerdict(_Evidence):
    error: str | None = None


class ApprovalEvidence(_Evidence):
    reason: str
