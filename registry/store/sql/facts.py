"""The facts the release gates read, inside the transaction that would flip a pointer.

Every reader runs on the connection of the transaction that holds the model's row
lock, so what a gate decides on is what the flip commits against. Evidence a gate
cannot read fails that gate (never a third-party error); a refusal is recorded as
an event in the same transaction (``refuse``), for the caller to raise after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy import Connection, bindparam, select

from registry.errors import GateRefused, InvalidInput
from registry.models import (
    EXTERNAL_FORMAT,
    EventDetails,
    Origin,
    Signature,
    Stage,
    validation_message,
)
from registry.release import gates
from registry.release.checks import (
    CanaryVerdict,
    CheckKind,
    EvaluationEvidence,
    HealthVerdict,
)
from registry.release.decision import Decision
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState, one_line
from registry.store.sql.common import (
    LockedModel,
    append_event,
    version_id,
)
from registry.store.sql.engine import Database
from registry.store.sql.schema import versions_table
from registry.store.sql.schema_contract import (
    app_releases_table,
    bindings_table,
    policies_table,
)
from registry.store.sql.schema_release import checks_table, replicas_table
from registry.store.sql.subject_index import erasure_problems

_v, _c, _r = versions_table, checks_table, replicas_table
_p, _ar, _b = policies_table, app_releases_table, bindings_table
DEFAULT_POLICY = ReleasePolicy()
MAX_REASON = 2000

_LATEST_POLICY = (
    select(_p.c.version, _p.c.document)
    .where(_p.c.model_id == bindparam("model_id"))
    .order_by(_p.c.version.desc())
    .limit(1)
)
CANDIDATE = select(
    _v.c.stage,
    _v.c.sha256,
    _v.c.size,
    _v.c.format,
    _v.c.created_by,
    _v.c.signature,
    _v.c.metrics,
).where(_v.c.id == bindparam("vid"))
PRODUCTION_ROW = select(_v.c.id, _v.c.version, _v.c.metrics).where(
    _v.c.model_id == bindparam("model_id"), _v.c.stage == Stage.PRODUCTION.value
)
_REPLICAS = select(_r.c.region, _r.c.state, _r.c.sha256, _r.c.size, _r.c.error).where(
    _r.c.version_id == bindparam("vid")
)
_GATE_CHECKS = (
    select(_c.c.kind, _c.c.region, _c.c.passed, _c.c.evidence, _c.c.recorded_by)
    .where(
        _c.c.version_id == bindparam("vid"),
        _c.c.kind.in_([CheckKind.HEALTH.value, CheckKind.CANARY.value, CheckKind.APPROVAL.value]),
    )
    .order_by(_c.c.id)
)
_LATEST_EVALUATION = (
    select(_c.c.evidence)
    .where(_c.c.version_id == bindparam("vid"), _c.c.kind == CheckKind.EVALUATION.value)
    .order_by(_c.c.id.desc())
    .limit(1)
)
_FOLLOWERS = (
    select(_ar.c.app, _ar.c.release, _ar.c.schema_doc, _b.c.follow)
    .join(_ar, _ar.c.id == _b.c.release_id)
    .where(_b.c.model_id == bindparam("model_id"), _b.c.follow == bindparam("follow"))
    .order_by(_ar.c.app, _ar.c.release)
)


def json_value(value: Any) -> Any:
    return from_json(value) if isinstance(value, str | bytes) else value


def check_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise InvalidInput(f"{what} needs a reason (--reason)")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"a reason is at most {MAX_REASON} characters")
    return reason.strip()


# ---------------------------------------------------------------- facts (in the flip's tx)


def policy_of(conn: Connection, model_id: int) -> tuple[ReleasePolicy, int]:
    """The policy in force and its version (0: the default, nothing stored)."""
    row = conn.execute(_LATEST_POLICY, {"model_id": model_id}).first()
    if row is None:
        return DEFAULT_POLICY, 0
    return ReleasePolicy.parse(json_value(row.document)), int(row.version)


def signature_of(raw: Any) -> Signature | None:
    value = json_value(raw)
    return None if value is None else Signature.model_validate(value)


def region_facts(
    conn: Connection,
    vid: int,
    sha256: str,
    size: int,
    regions: tuple[str, ...],
    health: Mapping[str, tuple[bool, str | None]] | None = None,
) -> tuple[gates.RegionFacts, ...]:
    replicas = {r.region: r for r in conn.execute(_REPLICAS, {"vid": vid})}
    facts = []
    for region in regions:
        row = replicas.get(region)
        state = None if row is None else str(row.state)
        if (
            row is not None
            and state == ReplicaState.VERIFIED.value
            and (row.sha256 != sha256 or row.size != size)
        ):
            state = "stale"  # verified bytes that are not this version's registered ones
        passed, error = (health or {}).get(region, (None, None))
        facts.append(
            gates.RegionFacts(
                region=region,
                replica=state,
                replica_error=None if row is None else row.error,
                health=passed,
                health_error=error,
            )
        )
    return tuple(facts)


def promotion_facts(
    conn: Connection,
    model: LockedModel,
    version: int,
    vid: int,
    target: str,
    policy: ReleasePolicy,
    policy_version: int,
) -> gates.PromotionFacts:

    candidate = conn.execute(CANDIDATE, {"vid": vid}).one()
    production = conn.execute(PRODUCTION_ROW, {"model_id": model.id}).first()
    health: dict[str, tuple[bool, str | None]] = {}
    canary: gates.CanaryFacts | None = None
    approvers: list[str] = []
    for check in conn.execute(_GATE_CHECKS, {"vid": vid}):
        evidence = json_value(check.evidence) or {}
        if check.kind == CheckKind.HEALTH.value and check.region is not None:
            health[check.region] = _health(bool(check.passed), evidence)
        elif check.kind == CheckKind.CANARY.value:
            canary = _canary(bool(check.passed), evidence)
        elif check.kind == CheckKind.APPROVAL.value and check.recorded_by != candidate.created_by:
            approvers.append(check.recorded_by)
    signature = signature_of(candidate.signature)
    follow = "production" if target == Stage.PRODUCTION.value else target
    releases = follower_skews(conn, model, follow, signature)
    return gates.PromotionFacts(
        name=model.name,
        version=version,
        target=target,
        stage=Stage(candidate.stage),
        generation=model.generation,
        production=None if production is None else int(production.version),
        registrant=candidate.created_by,
        has_signature=signature is not None,
        regions=region_facts(conn, vid, candidate.sha256, candidate.size, policy.regions, health),
        canary=canary,
        releases=releases,
        approvers=tuple(dict.fromkeys(approvers)),
        policy_version=policy_version,
        unverified=candidate.format == EXTERNAL_FORMAT,
        erasures=erasure_problems(conn, model.id, model.name, version, vid),
    )


def _health(passed: bool, evidence: Any) -> tuple[bool, str | None]:
    """(passed, error) of a health check; evidence the gate cannot read fails it."""
    try:
        error = HealthVerdict.model_validate(evidence).error
    except ValidationError as exc:
        return False, f"health evidence unreadable: {validation_message(exc)}"
    return passed, one_line(error)


def _canary(passed: bool, evidence: Any) -> gates.CanaryFacts:
    try:
        verdict = CanaryVerdict.model_validate(evidence)
    except ValidationError as exc:
        return gates.CanaryFacts(False, f"evidence unreadable: {validation_message(exc)}", None)
    return gates.CanaryFacts(passed, one_line(verdict.decision) or "", verdict.baseline_version)


def follower_skews(
    conn: Connection, model: LockedModel, follow: str, signature: Signature | None
) -> tuple[gates.ReleaseSkew, ...]:
    """Every app release that follows ``follow`` (``production`` or an alias) of the
    model, and how ``signature`` differs from the schema it sends."""
    from registry.release.signature import skew

    releases = []
    for row in conn.execute(_FOLLOWERS, {"model_id": model.id, "follow": follow}):
        schema = Signature.model_validate(json_value(row.schema_doc))
        report = None if signature is None else skew(signature, schema)
        releases.append(
            gates.ReleaseSkew(
                app=row.app,
                release=row.release,
                follow=row.follow,
                problems=() if report is None else tuple(report.lines()),
                summary="" if report is None else report.summary(),
            )
        )
    return tuple(releases)


def version_signature(conn: Connection, vid: int) -> Signature | None:
    return signature_of(conn.execute(CANDIDATE, {"vid": vid}).one().signature)


def staging_facts(
    conn: Connection, model: LockedModel, version: int, vid: int, policy_version: int
) -> gates.StagingFacts:
    """The candidate's metrics (from its latest evaluation check, else as registered) and
    Production's (measured on the same holdout when that evaluation did, else registered)."""
    candidate = conn.execute(CANDIDATE, {"vid": vid}).one()
    production = conn.execute(PRODUCTION_ROW, {"model_id": model.id}).first()
    raw = conn.execute(_LATEST_EVALUATION, {"vid": vid}).scalar()
    evaluation: EvaluationEvidence | None = None
    unreadable: tuple[str, ...] = ()
    if raw is not None:
        try:
            evaluation = EvaluationEvidence.model_validate(json_value(raw))
        except ValidationError as exc:
            unreadable = (f"the latest evaluation check is unreadable: {validation_message(exc)}",)
    prod_version = None if production is None else int(production.version)
    metrics, source = dict(json_value(candidate.metrics) or {}), "registered metrics"
    prod_metrics = None if production is None else dict(json_value(production.metrics) or {})
    if evaluation is not None:
        metrics, source = dict(evaluation.metrics), "evaluation check"
        if evaluation.production_version == prod_version and evaluation.production_metrics:
            prod_metrics = dict(evaluation.production_metrics)
    return gates.StagingFacts(
        version=version,
        stage=Stage(candidate.stage),
        metrics=metrics,
        metrics_source=source,
        production=prod_version,
        production_metrics=prod_metrics,
        policy_version=policy_version,
        unreadable=unreadable,
    )


def rollback_facts(
    conn: Connection,
    model: LockedModel,
    target: int,
    current: int | None,
    policy: ReleasePolicy,
    policy_version: int,
) -> gates.RollbackFacts:
    vid, _stage = version_id(conn, model.id, target, model.name)
    candidate = conn.execute(CANDIDATE, {"vid": vid}).one()
    signature = signature_of(candidate.signature)
    return gates.RollbackFacts(
        name=model.name,
        target=target,
        current=current,
        regions=region_facts(conn, vid, candidate.sha256, candidate.size, policy.regions),
        policy_version=policy_version,
        has_signature=signature is not None,
        releases=follower_skews(conn, model, "production", signature),
        erasures=erasure_problems(conn, model.id, model.name, target, vid),
    )


def refuse(
    conn: Connection,
    model: LockedModel,
    *,
    actor: str,
    origin: Origin | None,
    version: int | None,
    gate: str,
    subject: str,
    decision: Decision[Any],
    reason: str | None,
    message: str | None = None,
) -> GateRefused:
    """Record a refusal as an event (committed with the caller's transaction); the error
    for the caller to raise once it has committed."""
    append_event(
        conn,
        model,
        kind="refused",
        actor=actor,
        origin=origin,
        generation=model.generation,
        version=version,
        subject=subject,
        reason=reason,
        details=EventDetails(gate=gate, reasons=decision.reasons),
    )
    what = f"v{version} to {subject}" if version is not None else subject
    message = message or f"{gate} gate refused {model.name} {what}"
    return GateRefused(f"{message}: {'; '.join(decision.reasons)}", decision.reasons)


def forced_details(policy: ReleasePolicy, target: str, decision: Decision[Any]) -> EventDetails:
    return EventDetails(
        forced=True,
        skipped=gates.skipped_gates(policy, target),
        reasons=decision.reasons,
    )


class Recorder:
    """What the store's mixins share: the database, who acts, the run behind it, and
    recording a refusal as them."""

    db: Database
    actor: str
    origin: Origin | None

    def _refuse(
        self,
        conn: Connection,
        model: LockedModel,
        *,
        version: int | None,
        gate: str,
        subject: str,
        decision: Decision[Any],
        reason: str | None,
        message: str | None = None,
    ) -> GateRefused:
        """``refuse`` as this store's actor, from its origin."""
        return refuse(
            conn,
            model,
            actor=self.actor,
            origin=self.origin,
            version=version,
            gate=gate,
            subject=subject,
            decision=decision,
            reason=reason,
            message=message,
        )
