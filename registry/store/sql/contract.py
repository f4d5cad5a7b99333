"""The release contract's records, and the facts the gates read inside a flip's transaction.

Policies are versioned (``set_policy`` appends; the newest is in force), approvals
are checks recorded by the approver, and app releases declare the schema their
code sends. The ``*_facts`` readers run on the connection of the transaction that
holds the model's lock, so what a gate decides on is what the flip commits against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import (
    AppRelease,
    Binding,
    EventDetails,
    Origin,
    Signature,
    Stage,
    check_alias,
    check_app,
    check_model_name,
    check_release,
    check_version,
    validation_message,
)
from registry.release import gates
from registry.release.checks import (
    ApprovalEvidence,
    CanaryVerdict,
    CheckKind,
    EvaluationEvidence,
    HealthVerdict,
)
from registry.release.decision import Decision
from registry.release.policy import ApprovalStatus, Gate, PolicyRecord, ReleasePolicy
from registry.release_models import Check, ReplicaState, one_line
from registry.store.sql.common import (
    LockedModel,
    append_event,
    lock_model,
    utcnow,
    version_id,
)
from registry.store.sql.engine import Database
from registry.store.sql.schema import aliases_table, models_table, versions_table
from registry.store.sql.schema_contract import (
    app_releases_table,
    bindings_table,
    policies_table,
)
from registry.store.sql.schema_release import checks_table, replicas_table

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
_CANDIDATE = select(
    _v.c.stage, _v.c.sha256, _v.c.size, _v.c.created_by, _v.c.signature, _v.c.metrics
).where(_v.c.id == bindparam("vid"))
_PRODUCTION = select(_v.c.id, _v.c.version, _v.c.metrics).where(
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


def _json(value: Any) -> Any:
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
    return ReleasePolicy.parse(_json(row.document)), int(row.version)


def _signature(raw: Any) -> Signature | None:
    value = _json(raw)
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

    candidate = conn.execute(_CANDIDATE, {"vid": vid}).one()
    production = conn.execute(_PRODUCTION, {"model_id": model.id}).first()
    health: dict[str, tuple[bool, str | None]] = {}
    canary: gates.CanaryFacts | None = None
    approvers: list[str] = []
    for check in conn.execute(_GATE_CHECKS, {"vid": vid}):
        evidence = _json(check.evidence) or {}
        if check.kind == CheckKind.HEALTH.value and check.region is not None:
            health[check.region] = _health(bool(check.passed), evidence)
        elif check.kind == CheckKind.CANARY.value:
            canary = _canary(bool(check.passed), evidence)
        elif check.kind == CheckKind.APPROVAL.value and check.recorded_by != candidate.created_by:
            approvers.append(check.recorded_by)
    signature = _signature(candidate.signature)
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
        schema = Signature.model_validate(_json(row.schema_doc))
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
    return _signature(conn.execute(_CANDIDATE, {"vid": vid}).one().signature)


def staging_facts(
    conn: Connection, model: LockedModel, version: int, vid: int, policy_version: int
) -> gates.StagingFacts:
    """The candidate's metrics (from its latest evaluation check, else as registered) and
    Production's (measured on the same holdout when that evaluation did, else registered)."""
    candidate = conn.execute(_CANDIDATE, {"vid": vid}).one()
    production = conn.execute(_PRODUCTION, {"model_id": model.id}).first()
    raw = conn.execute(_LATEST_EVALUATION, {"vid": vid}).scalar()
    evaluation: EvaluationEvidence | None = None
    unreadable: tuple[str, ...] = ()
    if raw is not None:
        try:
            evaluation = EvaluationEvidence.model_validate(_json(raw))
        except ValidationError as exc:
            unreadable = (f"the latest evaluation check is unreadable: {validation_message(exc)}",)
    prod_version = None if production is None else int(production.version)
    metrics, source = dict(_json(candidate.metrics) or {}), "registered metrics"
    prod_metrics = None if production is None else dict(_json(production.metrics) or {})
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
    candidate = conn.execute(_CANDIDATE, {"vid": vid}).one()
    signature = _signature(candidate.signature)
    return gates.RollbackFacts(
        name=model.name,
        target=target,
        current=current,
        regions=region_facts(conn, vid, candidate.sha256, candidate.size, policy.regions),
        policy_version=policy_version,
        has_signature=signature is not None,
        releases=follower_skews(conn, model, "production", signature),
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


# ---------------------------------------------------------------- the mixin


class ContractMixin:
    db: Database
    actor: str
    origin: Origin | None

    if TYPE_CHECKING:  # provided by VersionsMixin

        def _insert_model(self, conn: Connection, name: str) -> int | None: ...

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

    # ------------------------------------------------------------ policies

    def get_policy(self, name: str) -> PolicyRecord:
        check_model_name(name)
        with self.db.read() as conn:
            model = _model_id(conn, name)
            row = conn.execute(
                select(_p).where(_p.c.model_id == model).order_by(_p.c.version.desc()).limit(1)
            ).first()
        return _policy_record(name, row)

    def policy_history(self, name: str) -> list[PolicyRecord]:
        check_model_name(name)
        with self.db.read() as conn:
            model = _model_id(conn, name)
            rows = conn.execute(select(_p).where(_p.c.model_id == model).order_by(_p.c.version))
            return [_policy_record(name, row) for row in rows]

    def set_policy(self, name: str, policy: ReleasePolicy, *, reason: str) -> PolicyRecord:
        check_model_name(name)
        policy = ReleasePolicy.parse(policy)
        reason = check_reason(reason, "a policy change")
        with self.db.write() as conn:
            self._insert_model(conn, name)
            model = lock_model(conn, name)
            _policy, current = policy_of(conn, model.id)
            now = utcnow()
            conn.execute(
                insert(_p).values(
                    model_id=model.id,
                    version=current + 1,
                    document=policy.to_document(),
                    reason=reason,
                    actor=self.actor,
                    created_at=now,
                )
            )
            append_event(
                conn,
                model,
                kind="policy",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                subject="policy",
                from_value=str(current) if current else None,
                to_value=str(current + 1),
                reason=reason,
                at=now,
            )
        return PolicyRecord(
            model=name,
            version=current + 1,
            policy=policy,
            reason=reason,
            actor=self.actor,
            created_at=now,
        )

    # ------------------------------------------------------------ approvals

    def approve(self, name: str, version: int, *, reason: str) -> Check:
        check_model_name(name)
        check_version(version)
        reason = check_reason(reason, "an approval")
        now = utcnow()
        with self.db.write() as conn:
            model = lock_model(conn, name)
            vid, stage = version_id(conn, model.id, version, name)
            registrant = conn.execute(_CANDIDATE, {"vid": vid}).one().created_by
            if registrant == self.actor:
                raise Conflict(
                    f"{self.actor} registered {name} v{version}: an approval must come from "
                    "someone else"
                )
            if stage in (Stage.ARCHIVED, Stage.PRODUCTION):
                raise Conflict(f"{name} v{version} is in {stage.value}: nothing to approve")
            evidence = ApprovalEvidence(reason=reason).model_dump(mode="json")
            conn.execute(
                insert(_c).values(
                    version_id=vid,
                    kind=CheckKind.APPROVAL.value,
                    region=None,
                    passed=True,
                    evidence=evidence,
                    recorded_at=now,
                    recorded_by=self.actor,
                )
            )
            append_event(
                conn,
                model,
                kind="approval",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                version=version,
                subject="approval",
                reason=reason,
                at=now,
            )
        return Check(
            kind=CheckKind.APPROVAL.value,
            passed=True,
            evidence=evidence,
            recorded_at=now,
            recorded_by=self.actor,
        )

    def request_approval(self, name: str, version: int, *, needed: int) -> None:
        """Say in the log that a release waits for ``needed`` approvals of ``version``
        (the event's origin names the waiting flow run, so an approval can resume it)."""
        check_model_name(name)
        check_version(version)
        with self.db.write() as conn:
            model = lock_model(conn, name)
            version_id(conn, model.id, version, name)
            append_event(
                conn,
                model,
                kind="approval",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                version=version,
                subject="requested",
                to_value=str(needed),
                reason=f"waiting for {needed} approval(s)",
            )

    def approval_status(self, name: str, version: int) -> ApprovalStatus:
        check_model_name(name)
        check_version(version)
        with self.db.read() as conn:
            model_id = _model_id(conn, name)
            vid, _stage = version_id(conn, model_id, version, name)
            policy, _ = policy_of(conn, model_id)
            registrant = conn.execute(_CANDIDATE, {"vid": vid}).one().created_by
            approvers = conn.execute(
                select(_c.c.recorded_by)
                .where(_c.c.version_id == vid, _c.c.kind == CheckKind.APPROVAL.value)
                .order_by(_c.c.id)
            ).scalars()
            counted = tuple(dict.fromkeys(a for a in approvers if a != registrant))
        needed = max(policy.approvals.required, 1) if policy.requires(Gate.APPROVAL) else 0
        return ApprovalStatus(
            needed=needed,
            approvers=counted,
            registrant=registrant,
            timeout_s=policy.approvals.timeout_s,
        )

    # ------------------------------------------------------------ dry runs and refusals

    def check_promotion(self, name: str, version: int, target: str = "Production") -> list[str]:
        """What the promotion gate would say now (nothing is recorded or moved)."""
        check_model_name(name)
        check_version(version)
        with self.db.read() as conn:
            row = conn.execute(
                select(models_table.c.id, models_table.c.generation).where(
                    models_table.c.name == name
                )
            ).first()
            if row is None:
                raise NotFound(f"model {name!r} not found")
            model = LockedModel(row.id, name, row.generation)
            vid, _stage = version_id(conn, model.id, version, name)
            policy, policy_version = policy_of(conn, model.id)
            facts = promotion_facts(conn, model, version, vid, target, policy, policy_version)
        return list(gates.promotion(policy, facts).reasons)

    def record_refusal(
        self,
        name: str,
        version: int,
        reasons: list[str],
        *,
        gate: str = "pipeline",
        subject: str = "Production",
        reason: str | None = None,
    ) -> GateRefused:
        """Record that a release of ``version`` did not go ahead, and why (a ``refused``
        event); returns the error for the caller to raise."""
        check_model_name(name)
        check_version(version)
        if not reasons:
            raise InvalidInput("a refusal needs at least one reason")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            version_id(conn, model.id, version, name)
            return self._refuse(
                conn,
                model,
                version=version,
                gate=gate,
                subject=subject,
                decision=Decision.of(list(reasons), None),
                reason=reason,
            )

    # ------------------------------------------------------------ app releases

    def create_app_release(
        self,
        app: str,
        release: str,
        feature_schema: Signature,
        *,
        description: str | None = None,
    ) -> AppRelease:
        check_app(app)
        check_release(release)
        if not isinstance(feature_schema, Signature):
            raise InvalidInput("an app release needs a feature schema (a signature)")
        now = utcnow()
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        with self.db.write() as conn:
            created = conn.execute(
                dialect_insert(_ar)
                .values(
                    app=app,
                    release=release,
                    schema_doc=feature_schema.model_dump(mode="json"),
                    description=description,
                    created_by=self.actor,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["app", "release"])
                .returning(_ar.c.id)
            ).scalar()
            if created is None:
                raise Conflict(f"app release {app}@{release} exists (its schema never changes)")
        return self.get_app_release(app, release)

    def get_app_release(self, app: str, release: str) -> AppRelease:
        check_app(app)
        check_release(release)
        with self.db.read() as conn:
            found = _releases(conn, app, release)
        if not found:
            raise NotFound(f"app release {app}@{release} not found")
        return found[0]

    def list_app_releases(self, app: str | None = None) -> list[AppRelease]:
        if app is not None:
            check_app(app)
        with self.db.read() as conn:
            return _releases(conn, app, None)

    def bind_app_release(
        self,
        app: str,
        release: str,
        model: str,
        *,
        version: int | None = None,
        follow: str | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> AppRelease:
        check_app(app)
        check_release(release)
        check_model_name(model)
        if (version is None) == (follow is None):
            raise InvalidInput("bind either a version (--version V) or a pointer (--follow P)")
        if version is not None:
            check_version(version)
        if follow is not None:
            follow = follow.strip().lower()
            if follow != "production":
                check_alias(follow)
        if force:
            reason = check_reason(reason, "a forced binding")
        refused: GateRefused | None = None
        with self.db.write() as conn:
            locked = lock_model(conn, model)
            row = conn.execute(
                select(_ar.c.id, _ar.c.schema_doc).where(_ar.c.app == app, _ar.c.release == release)
            ).first()
            if row is None:
                raise NotFound(f"app release {app}@{release} not found")
            target_vid = None
            if version is not None:
                target_vid, _stage = version_id(conn, locked.id, version, model)
            checked = version if version is not None else _pointer_version(conn, locked, follow)
            details = None
            if checked is not None:
                decision = _binding_decision(conn, locked, checked, app, release, follow, row)
                if not decision.ok and not force:
                    refused = self._refuse(
                        conn,
                        locked,
                        version=checked,
                        gate="binding",
                        subject=f"{app}@{release}",
                        decision=decision,
                        reason=reason,
                    )
                elif not decision.ok:
                    details = EventDetails(
                        forced=True, skipped=("signature",), reasons=decision.reasons
                    )
            if refused is None:
                _upsert_binding(
                    conn, self.db.dialect, row.id, locked.id, target_vid, follow, self.actor
                )
                append_event(
                    conn,
                    locked,
                    kind="binding",
                    actor=self.actor,
                    origin=self.origin,
                    generation=locked.generation,
                    version=version,
                    subject=f"{app}@{release}",
                    to_value=f"v{version}" if version is not None else f"follow {follow}",
                    reason=reason,
                    details=details,
                )
        if refused is not None:
            raise refused
        return self.get_app_release(app, release)

    def resolve_app_release(
        self, app: str, release: str, model: str | None = None
    ) -> tuple[str, int]:
        bound = self.get_app_release(app, release).bindings
        if model is not None:
            bound = tuple(b for b in bound if b.model == model)
        if not bound:
            raise NotFound(
                f"app release {app}@{release} has no binding"
                + (f" for model {model!r}" if model else "")
            )
        if len(bound) > 1:
            names = ", ".join(b.model for b in bound)
            raise InvalidInput(f"app release {app}@{release} binds {names}: name the model")
        binding = bound[0]
        if binding.version is None:
            raise NotFound(
                f"app release {app}@{release} follows {binding.model}@{binding.follow}, "
                "which points at no version"
            )
        return binding.model, binding.version


def _binding_decision(
    conn: Connection,
    model: LockedModel,
    version: int,
    app: str,
    release: str,
    follow: str | None,
    row: Any,
) -> Decision[gates.ReleaseSkew]:
    from registry.release.signature import skew

    vid, _stage = version_id(conn, model.id, version, model.name)
    signature = _signature(conn.execute(_CANDIDATE, {"vid": vid}).one().signature)
    schema = Signature.model_validate(_json(row.schema_doc))
    report = None if signature is None else skew(signature, schema)
    facts = gates.ReleaseSkew(
        app=app,
        release=release,
        follow=follow or f"v{version}",
        problems=() if report is None else tuple(report.lines()),
        summary="" if report is None else report.summary(),
    )
    return gates.binding(facts, version=version, has_signature=signature is not None)


def _pointer_version(conn: Connection, model: LockedModel, follow: str | None) -> int | None:
    if follow == "production":
        row = conn.execute(_PRODUCTION, {"model_id": model.id}).first()
        return None if row is None else int(row.version)
    found = conn.execute(
        select(_v.c.version)
        .join(aliases_table, aliases_table.c.version_id == _v.c.id)
        .where(aliases_table.c.model_id == model.id, aliases_table.c.alias == follow)
    ).scalar()
    return None if found is None else int(found)


def _upsert_binding(
    conn: Connection,
    dialect: str,
    release_id: int,
    model_id: int,
    version_vid: int | None,
    follow: str | None,
    actor: str,
) -> None:
    values = {
        "release_id": release_id,
        "model_id": model_id,
        "version_id": version_vid,
        "follow": follow,
        "bound_by": actor,
        "bound_at": utcnow(),
    }
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(_b).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["release_id", "model_id"],
            set_={
                k: statement.excluded[k] for k in ("version_id", "follow", "bound_by", "bound_at")
            },
        )
    )


def _model_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(models_table.c.id).where(models_table.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"model {name!r} not found")
    return int(found)


def _policy_record(name: str, row: Any) -> PolicyRecord:
    if row is None:
        return PolicyRecord(model=name, version=0, policy=DEFAULT_POLICY, reason="default policy")
    return PolicyRecord(
        model=name,
        version=int(row.version),
        policy=ReleasePolicy.parse(_json(row.document)),
        reason=row.reason,
        actor=row.actor,
        created_at=row.created_at,
    )


def _releases(conn: Connection, app: str | None, release: str | None) -> list[AppRelease]:
    query = select(_ar).order_by(_ar.c.app, _ar.c.id)
    if app is not None:
        query = query.where(_ar.c.app == app)
    if release is not None:
        query = query.where(_ar.c.release == release)
    rows = conn.execute(query).all()
    if not rows:
        return []
    bindings: dict[int, list[Binding]] = {}
    production = (
        select(_v.c.version)
        .where(_v.c.model_id == _b.c.model_id, _v.c.stage == Stage.PRODUCTION.value)
        .scalar_subquery()
    )
    aliased = (
        select(_v.c.version)
        .join(aliases_table, aliases_table.c.version_id == _v.c.id)
        .where(aliases_table.c.model_id == _b.c.model_id, aliases_table.c.alias == _b.c.follow)
        .scalar_subquery()
    )
    pinned = select(_v.c.version).where(_v.c.id == _b.c.version_id).scalar_subquery()
    for b in conn.execute(
        select(
            _b.c.release_id,
            models_table.c.name,
            _b.c.follow,
            _b.c.bound_by,
            _b.c.bound_at,
            pinned.label("pinned"),
            production.label("production"),
            aliased.label("aliased"),
        )
        .join(models_table, models_table.c.id == _b.c.model_id)
        .where(_b.c.release_id.in_([r.id for r in rows]))
        .order_by(models_table.c.name)
    ):
        now = (
            b.pinned
            if b.follow is None
            else b.production
            if b.follow == "production"
            else b.aliased
        )
        bindings.setdefault(b.release_id, []).append(
            Binding(
                model=b.name,
                version=now,
                follow=b.follow,
                bound_by=b.bound_by,
                bound_at=b.bound_at,
            )
        )
    return [
        AppRelease(
            app=r.app,
            release=r.release,
            feature_schema=Signature.model_validate(_json(r.schema_doc)),
            description=r.description,
            created_by=r.created_by,
            created_at=r.created_at,
            bindings=tuple(bindings.get(r.id, ())),
        )
        for r in rows
    ]
