"""Policies, approvals and dry runs: the release contract's records about one model.

Policies are versioned (``set_policy`` appends; the newest is in force) and
approvals are checks recorded by the approver, never by the registrant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import (
    Stage,
    check_id_page,
    check_model_name,
    check_version,
)
from registry.release import gates
from registry.release.checks import (
    ApprovalEvidence,
    CheckKind,
)
from registry.release.decision import Decision
from registry.release.policy import ApprovalStatus, Gate, PolicyRecord, ReleasePolicy
from registry.release_models import Check
from registry.store.sql.common import (
    LockedModel,
    append_event,
    lock_model,
    utcnow,
    version_id,
)
from registry.store.sql.facts import (
    CANDIDATE,
    DEFAULT_POLICY,
    Recorder,
    check_reason,
    json_value,
    policy_of,
    promotion_facts,
)
from registry.store.sql.schema import models_table, versions_table
from registry.store.sql.schema_contract import (
    app_releases_table,
    bindings_table,
    policies_table,
)
from registry.store.sql.schema_release import checks_table, replicas_table

_v, _c, _r = versions_table, checks_table, replicas_table
_p, _ar, _b = policies_table, app_releases_table, bindings_table


class PoliciesMixin(Recorder):
    if TYPE_CHECKING:  # provided by VersionsMixin

        def _insert_model(self, conn: Connection, name: str) -> int | None: ...

    # ------------------------------------------------------------ policies

    def get_policy(self, name: str) -> PolicyRecord:
        check_model_name(name)
        with self.db.read() as conn:
            model = _model_id(conn, name)
            row = conn.execute(
                select(_p).where(_p.c.model_id == model).order_by(_p.c.version.desc()).limit(1)
            ).first()
        return _policy_record(name, row)

    def policy_history(self, name: str, *, limit: int = 1000, after: int = 0) -> list[PolicyRecord]:
        check_model_name(name)
        check_id_page(limit, after)
        with self.db.read() as conn:
            model = _model_id(conn, name)
            rows = conn.execute(
                select(_p)
                .where(_p.c.model_id == model, _p.c.version > after)
                .order_by(_p.c.version)
                .limit(limit)
            )
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
            registrant = conn.execute(CANDIDATE, {"vid": vid}).one().created_by
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
            registrant = conn.execute(CANDIDATE, {"vid": vid}).one().created_by
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
        policy=ReleasePolicy.parse(json_value(row.document)),
        reason=row.reason,
        actor=row.actor,
        created_at=row.created_at,
    )
