"""REST resources: the release contract and its evidence.

Policies (read, history, set), approvals and approval requests, the promotion gate as
a dry run, recorded refusals, replicas, readiness in regions, and checks.

A policy travels as the document ``modelreg policy set`` reads (staging rules as
strings like ``auc >= 0.75``), both ways, so what a caller sends reads back the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints

from registry.release.policy import (
    DEFAULT_GATES,
    DEFAULT_REGIONS,
    ApprovalRule,
    ApprovalStatus,
    CanaryParams,
    Gate,
    PolicyRecord,
    ReleasePolicy,
)
from registry.release_models import Check, Replica, ReplicaState
from registry.server.deps import Door, reply
from registry.server.routes.params import (
    INT64_MAX,
    AfterId,
    Body,
    LimitQuery,
    StoredText,
    TextQuery,
    VersionPath,
    many,
)

router = APIRouter(tags=["release"])

Text = Annotated[StoredText, StringConstraints(max_length=4096)]
Short = Annotated[StoredText, StringConstraints(max_length=256)]


class PolicyDocument(BaseModel):
    """A release policy as written in a policy file (every field optional: the default)."""

    required: list[Gate] = Field(default_factory=lambda: list(DEFAULT_GATES))
    staging: list[str] = Field(default_factory=list, examples=[["auc >= 0.75"]])
    regions: list[str] = Field(default_factory=lambda: list(DEFAULT_REGIONS))
    protected_aliases: list[str] = Field(default_factory=lambda: ["production", "champion"])
    canary: CanaryParams = CanaryParams()
    approvals: ApprovalRule = ApprovalRule()


class PolicyVersion(BaseModel):
    """One stored version of a model's policy (version 0: the default, nothing stored)."""

    model: str
    version: int
    policy: PolicyDocument
    reason: str | None = None
    actor: str | None = None
    created_at: datetime | None = None


class PolicySet(Body):
    policy: dict[str, Any] = Field(description="a policy document (see PolicyDocument)")
    reason: Text


class Approval(Body):
    reason: Text


class ApprovalRequest(Body):
    needed: int = Field(ge=1, le=10)


class PromotionCheck(BaseModel):
    reasons: list[str]


class Refusal(Body):
    reasons: list[Text] = Field(min_length=1, max_length=100)
    gate: Short = "pipeline"
    subject: Short = "Production"
    reason: Text | None = None


class Refused(BaseModel):
    message: str
    reasons: list[str]


class ReplicaUpdate(Body):
    state: ReplicaState
    uri: Text | None = None
    sha256: StoredText | None = None
    size: int | None = Field(default=None, ge=0, le=INT64_MAX)
    error: StoredText | None = None


class Readiness(BaseModel):
    missing: list[str] = Field(description="the regions where the version is NOT ready")


class CheckRecord(Body):
    kind: StoredText
    region: StoredText | None = None
    passed: bool
    evidence: dict[StoredText, Any] = Field(default_factory=dict)


def _document(record: PolicyRecord) -> PolicyVersion:
    fields = record.model_dump(exclude={"policy"})
    return PolicyVersion(**fields, policy=PolicyDocument(**record.policy.to_document()))


# -- policies ------------------------------------------------------------------------


@router.get("/policy/{name:path}", response_model=PolicyVersion, summary="The policy in force")
def get_policy(name: str, store: Door) -> Response:
    return reply(_document(store.get_policy(name)))


@router.get(
    "/policy-history/{name:path}",
    response_model=list[PolicyVersion],
    summary="Every stored policy version, oldest first",
)
def policy_history(
    name: str, store: Door, limit: LimitQuery = 1000, after: AfterId = 0
) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``after`` the last version."""
    records = store.policy_history(name, limit=limit, after=after)
    return reply(many([_document(r) for r in records]))


@router.put("/policy/{name:path}", response_model=PolicyVersion, summary="Store a new policy")
def set_policy(name: str, body: PolicySet, store: Door) -> Response:
    policy = ReleasePolicy.parse(body.policy)
    return reply(_document(store.set_policy(name, policy, reason=body.reason)))


# -- approvals and the promotion gate ---------------------------------------------------


@router.get(
    "/approvals/{name:path}@{version}",
    response_model=ApprovalStatus,
    summary="Approvals needed and given",
)
def approval_status(name: str, version: VersionPath, store: Door) -> Response:
    return reply(store.approval_status(name, version))


@router.post("/approvals/{name:path}@{version}", response_model=Check, summary="Approve a release")
def approve(name: str, version: VersionPath, body: Approval, store: Door) -> Response:
    return reply(store.approve(name, version, reason=body.reason))


@router.post(
    "/approval-requests/{name:path}@{version}",
    status_code=204,
    summary="Log that a release waits for approvals",
)
def request_approval(
    name: str, version: VersionPath, body: ApprovalRequest, store: Door
) -> Response:
    store.request_approval(name, version, needed=body.needed)
    return Response(status_code=204)


@router.get(
    "/promotion-check/{name:path}@{version}",
    response_model=PromotionCheck,
    summary="The promotion gate as a dry run (no reasons: it would pass)",
)
def check_promotion(
    name: str, version: VersionPath, store: Door, target: TextQuery = None
) -> Response:
    return reply({"reasons": store.check_promotion(name, version, target or "Production")})


@router.post(
    "/refusals/{name:path}@{version}",
    response_model=Refused,
    summary="Record that a release did not go ahead",
)
def record_refusal(name: str, version: VersionPath, body: Refusal, store: Door) -> Response:
    refused = store.record_refusal(
        name,
        version,
        list(body.reasons),
        gate=body.gate,
        subject=body.subject,
        reason=body.reason,
    )
    return reply({"message": str(refused), "reasons": list(refused.reasons)})


# -- replicas, readiness and checks ------------------------------------------------


@router.put(
    "/replicas/{name:path}@{version}/{region}",
    response_model=Replica,
    summary="Set a version's replica in one region",
)
def record_replica(
    name: str, version: VersionPath, region: str, body: ReplicaUpdate, store: Door
) -> Response:
    replica = store.record_replica(
        name,
        version,
        region,
        body.state,
        uri=body.uri,
        sha256=body.sha256,
        size=body.size,
        error=body.error,
    )
    return reply(replica)


@router.get(
    "/replicas/{name:path}@{version}",
    response_model=list[Replica],
    summary="A version's replicas, by region",
)
def replicas(name: str, version: VersionPath, store: Door) -> Response:
    return reply(many(store.replicas(name, version)))


@router.get(
    "/ready/{name:path}@{version}",
    response_model=Readiness,
    summary="Of the regions asked, those where the version is not verified",
)
def ready_in_regions(
    name: str,
    version: VersionPath,
    store: Door,
    region: Annotated[list[StoredText], Query()] = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    return reply({"missing": store.ready_in_regions(name, version, region)})


@router.post("/checks/{name:path}@{version}", response_model=Check, summary="Record a check")
def record_check(name: str, version: VersionPath, body: CheckRecord, store: Door) -> Response:
    check = store.record_check(
        name, version, body.kind, region=body.region, passed=body.passed, evidence=body.evidence
    )
    return reply(check)


@router.get(
    "/checks/{name:path}@{version}",
    response_model=list[Check],
    summary="A version's checks (of one kind), oldest first",
)
def checks(name: str, version: VersionPath, store: Door, kind: TextQuery = None) -> Response:
    return reply(many(store.checks(name, version, kind)))


@router.get(
    "/latest-checks/{name:path}@{version}",
    response_model=dict[str, Check],
    summary='The newest check of a kind per region ("": not region-specific)',
)
def latest_checks(
    name: str, version: VersionPath, store: Door, kind: Annotated[StoredText, Query()]
) -> Response:
    latest = store.latest_checks(name, version, kind)
    return reply({region or "": check.model_dump(mode="json") for region, check in latest.items()})
