"""Pointers: stages, aliases and rollback, each a compare-and-swap on the generation.

Every move that can put a version where it serves is gated here, in the
transaction that makes it: None -> Staging (the policy's metric rules), Staging
-> Production and protected aliases (the promotion gate), rollback (the target's
replicas). The facts are read on the same connection, under the model's lock, at
the generation the move compares-and-swaps; a refusal is an event committed in
that transaction, then raised as ``GateRefused``. ``force`` (break-glass, with a
reason) skips the gates and records which ones it skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import (
    RESERVED_ALIASES,
    Event,
    EventDetails,
    PointerChange,
    Stage,
    check_alias,
    check_model_name,
    check_version,
)
from registry.release import gates
from registry.release.decision import Decision
from registry.release.policy import Gate, ReleasePolicy
from registry.release.transitions import (
    ProductionChange,
    RollbackTarget,
    check_transition,
    choose_rollback_target,
)
from registry.store.sql.common import (
    LockedModel,
    append_event,
    bump_generation,
    check_generation,
    lock_model,
    utcnow,
    version_id,
)
from registry.store.sql.facts import (
    Recorder,
    check_reason,
    follower_skews,
    forced_details,
    policy_of,
    promotion_facts,
    rollback_facts,
    staging_facts,
    version_signature,
)
from registry.store.sql.schema import (
    aliases_table,
    events_table,
    models_table,
    versions_table,
)

_v, _m, _a = versions_table, models_table, aliases_table
PRODUCTION_ALIAS = Stage.PRODUCTION.value.lower()


class PointersMixin(Recorder):
    def transition(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        expected_generation: int | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> PointerChange:
        check_model_name(name)
        check_version(version)
        stage = Stage(stage)
        if force:
            reason = check_reason(reason, "a forced change (--force)")
        refused: GateRefused | None = None
        with self.db.write() as conn:
            model = lock_model(conn, name)
            vid, current = version_id(conn, model.id, version, name)
            # A stale caller is refused even when its change is already in place: it
            # decided on a view of the model that is no longer true.
            check_generation(model, expected_generation)
            if current == stage:
                return PointerChange(name=name, generation=model.generation, events=())
            decision = check_transition(version, current, stage, forced=force)
            if not decision.ok:
                raise Conflict(decision.reasons[0])
            details: EventDetails | None = None
            if stage in (Stage.STAGING, Stage.PRODUCTION):
                details, refused = self._gate_stage(conn, model, version, vid, stage, force, reason)
            elif current is Stage.PRODUCTION:
                details, refused = self._gate_archive(conn, model, version, force, reason)
            if refused is None:
                events = self._move_stage(
                    conn, model, version, vid, current, stage, expected_generation, reason, details
                )
        if refused is not None:
            raise refused
        return PointerChange(name=name, generation=events[-1].generation, events=tuple(events))

    def promote(
        self,
        name: str,
        version: int,
        *,
        reason: str | None = None,
        expected_generation: int | None = None,
        force: bool = False,
    ) -> PointerChange:
        return self.transition(
            name,
            version,
            Stage.PRODUCTION,
            expected_generation=expected_generation,
            reason=reason,
            force=force,
        )

    def _gate_stage(
        self,
        conn: Connection,
        model: LockedModel,
        version: int,
        vid: int,
        stage: Stage,
        force: bool,
        reason: str | None,
    ) -> tuple[EventDetails | None, GateRefused | None]:
        """Run the stage's gate on facts read in this transaction: the details of a
        forced move, or the refusal (recorded) for the caller to raise."""
        policy, policy_version = policy_of(conn, model.id)
        decision: Decision[Any]
        if stage is Stage.STAGING:
            facts = staging_facts(conn, model, version, vid, policy_version)
            decision, gate_name = gates.staging(policy, facts), "staging"
        else:
            pfacts = promotion_facts(conn, model, version, vid, stage.value, policy, policy_version)
            decision, gate_name = gates.promotion(policy, pfacts), "promotion"
        if decision.ok:
            return None, None
        if force:
            return forced_details(policy, stage.value, decision), None
        refusal = self._refuse(
            conn,
            model,
            version=version,
            gate=gate_name,
            subject=stage.value,
            decision=decision,
            reason=reason,
        )
        return None, refusal

    def _gate_archive(
        self, conn: Connection, model: LockedModel, version: int, force: bool, reason: str | None
    ) -> tuple[EventDetails | None, GateRefused | None]:
        """Archiving the Production version leaves every app release that follows
        Production without a model: only with ``force`` while one does."""
        releases = follower_skews(conn, model, "production", None)
        labels = ", ".join(r.label for r in releases)
        problem = (
            f"{labels} follow production: archiving v{version} leaves them no model "
            "(roll back or promote another version instead)"
        )
        decision = Decision.of([problem] if releases else [], releases)
        if decision.ok:
            return None, None
        if force:
            forced = EventDetails(forced=True, skipped=("followers",), reasons=decision.reasons)
            return forced, None
        return None, self._refuse(
            conn,
            model,
            version=version,
            gate="archive",
            subject=Stage.ARCHIVED.value,
            decision=decision,
            reason=reason,
        )

    def _move_stage(
        self,
        conn: Connection,
        model: LockedModel,
        version: int,
        vid: int,
        current: Stage,
        stage: Stage,
        expected_generation: int | None,
        reason: str | None,
        details: EventDetails | None,
    ) -> list[Event]:
        generation = bump_generation(conn, model, expected_generation)
        now = utcnow()
        events: list[Event] = []
        if stage == Stage.PRODUCTION:
            events += self._archive_production(conn, model, generation, reason, now)
            _enter_production(conn, vid, generation)
        else:
            _set_stage(conn, vid, stage)
        events.append(
            append_event(
                conn,
                model,
                kind="stage",
                actor=self.actor,
                origin=self.origin,
                generation=generation,
                version=version,
                subject="stage",
                from_value=current.value,
                to_value=stage.value,
                reason=reason,
                at=now,
                details=details,
            )
        )
        return events

    def _archive_production(
        self,
        conn: Connection,
        model: LockedModel,
        generation: int,
        reason: str | None,
        now: datetime,
    ) -> list[Event]:
        events = []
        for row in conn.execute(_IN_PRODUCTION, {"model_id": model.id}).all():
            _set_stage(conn, row.id, Stage.ARCHIVED)
            events.append(
                append_event(
                    conn,
                    model,
                    kind="stage",
                    actor=self.actor,
                    origin=self.origin,
                    generation=generation,
                    version=row.version,
                    subject="stage",
                    from_value=Stage.PRODUCTION.value,
                    to_value=Stage.ARCHIVED.value,
                    reason=reason,
                    at=now,
                )
            )
        return events

    # ------------------------------------------------------------ aliases

    def set_aliases(
        self,
        name: str,
        moves: Mapping[str, int | None],
        *,
        expected_generation: int | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> PointerChange:
        check_model_name(name)
        if not moves:
            raise InvalidInput("no alias changes given")
        if PRODUCTION_ALIAS in moves:
            # ``production`` is the Production stage's pointer: moving it is a promotion,
            # through the same gate; it is removed only by rollback or archiving.
            target = moves[PRODUCTION_ALIAS]
            if len(moves) > 1 or target is None:
                raise InvalidInput(
                    "the production alias is the Production stage: set it alone, to a version "
                    "(it is removed by rollback or by archiving that version)"
                )
            return self.promote(
                name, target, reason=reason, expected_generation=expected_generation, force=force
            )
        for alias, target in moves.items():
            check_alias(alias)
            if target is not None:
                check_version(target)
        if force:
            reason = check_reason(reason, "a forced change (--force)")
        refused: GateRefused | None = None
        with self.db.write() as conn:
            model = lock_model(conn, name)
            current = self._alias_targets(conn, model.id)
            for alias, target in moves.items():
                if target is None and alias not in current:
                    raise NotFound(f"alias {alias!r} of model {name!r} not found")
            changes = {a: t for a, t in moves.items() if current.get(a) != t}
            check_generation(model, expected_generation)
            if not changes:
                return PointerChange(name=name, generation=model.generation, events=())
            resolved = {a: version_id(conn, model.id, t, name)[0] for a, t in changes.items() if t}
            details, refused = self._gate_aliases(conn, model, changes, resolved, force, reason)
            if refused is None:
                events = self._move_aliases(
                    conn, model, changes, resolved, current, expected_generation, reason, details
                )
        if refused is not None:
            raise refused
        return PointerChange(name=name, generation=events[-1].generation, events=tuple(events))

    def _gate_aliases(
        self,
        conn: Connection,
        model: LockedModel,
        changes: Mapping[str, int | None],
        resolved: Mapping[str, int],
        force: bool,
        reason: str | None,
    ) -> tuple[dict[str, EventDetails], GateRefused | None]:
        """Protected aliases pass the promotion gate (and are deleted only with force)."""
        policy, policy_version = policy_of(conn, model.id)
        details: dict[str, EventDetails] = {}
        for alias, target in changes.items():
            decision: Decision[Any]
            if not policy.is_protected(alias):
                if target is None:
                    continue
                # Not gated, but an app release that follows it must be able to feed it.
                signature = version_signature(conn, resolved[alias])
                releases = follower_skews(conn, model, alias, signature)
                decision = gates.followers(target, signature is not None, releases)
            elif target is None:
                decision = Decision.of(
                    [f"{alias} is a protected alias: removing it needs --force and a reason"],
                    None,
                )
            else:
                facts = promotion_facts(
                    conn, model, target, resolved[alias], alias, policy, policy_version
                )
                decision = gates.promotion(policy, facts)
            if decision.ok:
                continue
            if force:
                details[alias] = forced_details(policy, alias, decision)
                continue
            return details, self._refuse(
                conn,
                model,
                version=target,
                gate="alias",
                subject=alias,
                decision=decision,
                reason=reason,
            )
        return details, None

    def _move_aliases(
        self,
        conn: Connection,
        model: LockedModel,
        changes: Mapping[str, int | None],
        resolved: Mapping[str, int],
        current: Mapping[str, int],
        expected_generation: int | None,
        reason: str | None,
        details: Mapping[str, EventDetails],
    ) -> list[Event]:
        generation = bump_generation(conn, model, expected_generation)
        now = utcnow()
        events = []
        for alias, target in changes.items():
            conn.execute(
                delete(aliases_table).where(
                    aliases_table.c.model_id == model.id,
                    aliases_table.c.alias == alias,
                )
            )
            if target is not None:
                conn.execute(
                    insert(aliases_table).values(
                        model_id=model.id, alias=alias, version_id=resolved[alias]
                    )
                )
            old = current.get(alias)
            events.append(
                append_event(
                    conn,
                    model,
                    kind="alias",
                    actor=self.actor,
                    origin=self.origin,
                    generation=generation,
                    version=target,
                    subject=alias,
                    from_value=None if old is None else str(old),
                    to_value=None if target is None else str(target),
                    reason=reason,
                    at=now,
                    details=details.get(alias),
                )
            )
        return events

    @staticmethod
    def _alias_targets(conn: Connection, model_id: int) -> dict[str, int]:
        rows = conn.execute(
            select(aliases_table.c.alias, versions_table.c.version)
            .join(versions_table, versions_table.c.id == aliases_table.c.version_id)
            .where(aliases_table.c.model_id == model_id)
        )
        return {r.alias: r.version for r in rows}

    # ------------------------------------------------------------ rollback

    def rollback(
        self,
        name: str,
        *,
        to: int | None = None,
        expected_generation: int | None = None,
        reason: str,
        force: bool = False,
    ) -> PointerChange:
        check_model_name(name)
        if to is not None:
            check_version(to)
        reason = check_reason(reason, "a rollback")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            check_generation(model, expected_generation)
            current, choice = rollback_choice(conn, model.id, to)
            outcome = self._gate_rollback(conn, model, choice, to, reason, force)
            if isinstance(outcome, EventDetails):
                assert choice.evidence.target is not None
                event = self._roll_back(
                    conn,
                    model,
                    choice.evidence.target,
                    current,
                    expected_generation,
                    reason,
                    outcome,
                )
        if isinstance(outcome, GateRefused):
            raise outcome
        return PointerChange(name=name, generation=event.generation, events=(event,))

    def _gate_rollback(
        self,
        conn: Connection,
        model: LockedModel,
        choice: Decision[RollbackTarget],
        to: int | None,
        reason: str,
        force: bool,
    ) -> EventDetails | GateRefused:
        """The rollback event's details, or the refusal (recorded) to raise after commit."""
        target = choice.evidence.target
        decision, policy = rollback_gate(conn, model, choice)
        if choice.ok and target is not None:
            if decision.ok:
                return EventDetails(invalidate=True)
            if force:
                signature = Gate.SIGNATURE in policy.required
                skipped = ("replicas", "signature") if signature else ("replicas",)
                return forced_details(policy, "rollback", decision).model_copy(
                    update={"invalidate": True, "skipped": skipped}
                )
        return self._refuse(
            conn,
            model,
            version=target,
            gate="rollback",
            subject=Stage.PRODUCTION.value,
            decision=decision,
            reason=reason,
            message=f"cannot roll back {model.name!r}" if target is None else None,
        )

    def _roll_back(
        self,
        conn: Connection,
        model: LockedModel,
        target: int,
        current: Any,
        expected_generation: int | None,
        reason: str,
        details: EventDetails,
    ) -> Event:
        target_id, _ = version_id(conn, model.id, target, model.name)
        generation = bump_generation(conn, model, expected_generation)
        if current is not None:
            conn.execute(_ROLL_AWAY, {"vid": current.id})
        _enter_production(conn, target_id, generation)
        return append_event(
            conn,
            model,
            kind="rollback",
            actor=self.actor,
            origin=self.origin,
            generation=generation,
            version=target,
            subject="Production",
            from_value=str(current.version) if current else None,
            to_value=str(target),
            reason=reason,
            details=details,
        )

    # ------------------------------------------------------------ resolve

    def resolve(self, name: str, ref: str | int) -> int:
        if isinstance(ref, int) or ref.isdigit():
            statement, params = _RESOLVE_NUMBER, {"name": name, "version": int(ref)}
        elif ref.lower() == "latest":
            statement, params = _RESOLVE_LATEST, {"name": name}
        elif ref.lower() in RESERVED_ALIASES:  # stage names, in any case: Production too
            statement, params = _RESOLVE_STAGE, {"name": name, "stage": Stage.parse(ref).value}
        else:
            statement, params = _RESOLVE_ALIAS, {"name": name, "alias": ref}
        with self.db.read() as conn:
            found = conn.execute(statement, params).scalar()
        if found is None:
            check_model_name(name)
            raise NotFound(f"{name}@{ref} does not resolve to a version")
        return int(found)


_BY_NAME = (
    select(_v.c.version).join(_m, _m.c.id == _v.c.model_id).where(_m.c.name == bindparam("name"))
)
_RESOLVE_NUMBER = _BY_NAME.where(_v.c.version == bindparam("version"))
_RESOLVE_LATEST = _BY_NAME.order_by(_v.c.version.desc()).limit(1)
# max() rather than ORDER BY … LIMIT 1: the planner then drives from the
# (model_id, stage) index instead of walking every version newest-first.
_RESOLVE_STAGE = (
    select(func.max(_v.c.version))
    .join(_m, _m.c.id == _v.c.model_id)
    .where(_m.c.name == bindparam("name"), _v.c.stage == bindparam("stage"))
)
_RESOLVE_ALIAS = (
    select(_v.c.version)
    .join(_a, _a.c.version_id == _v.c.id)
    .join(_m, _m.c.id == _a.c.model_id)
    .where(_m.c.name == bindparam("name"), _a.c.alias == bindparam("alias"))
)


def _enter_production(conn: Connection, vid: int, generation: int) -> None:
    """The unguarded flip: only the gated moves above may call it (a test checks that)."""
    conn.execute(_ENTER_PRODUCTION, {"vid": vid, "generation": generation})


def _set_stage(conn: Connection, vid: int, stage: Stage) -> None:
    conn.execute(_SET_STAGE, {"vid": vid, "stage": stage.value})


_SET_STAGE = update(_v).where(_v.c.id == bindparam("vid")).values(stage=bindparam("stage"))
_ENTER_PRODUCTION = (
    update(_v)
    .where(_v.c.id == bindparam("vid"))
    .values(stage=Stage.PRODUCTION.value, served_generation=bindparam("generation"))
)
_ROLL_AWAY = (
    update(_v)
    .where(_v.c.id == bindparam("vid"))
    .values(stage=Stage.ARCHIVED.value, rolled_back=True)
)
_IN_PRODUCTION = select(_v.c.id, _v.c.version).where(
    _v.c.model_id == bindparam("model_id"), _v.c.stage == Stage.PRODUCTION.value
)
# The two most recent entries into Production among versions never rolled away
# from (one of them may be the current version), via ix_version_served.
_LAST_SERVED = (
    select(_v.c.version, _v.c.served_generation)
    .where(
        _v.c.model_id == bindparam("model_id"),
        _v.c.served_generation.is_not(None),
        _v.c.rolled_back == False,  # noqa: E712 (SQL, not Python)
    )
    .order_by(_v.c.served_generation.desc())
    .limit(2)
)
_SERVED_AT = select(_v.c.version, _v.c.served_generation).where(
    _v.c.model_id == bindparam("model_id"),
    _v.c.version == bindparam("version"),
    _v.c.served_generation.is_not(None),
)


def rollback_choice(
    conn: Connection, model_id: int, requested: int | None
) -> tuple[Any, Decision[RollbackTarget]]:
    """The Production row now (id, version; None if none) and the version a rollback
    restores: what ``rollback`` and its dry run (``rollback_plan``) both decide from."""
    current = conn.execute(_IN_PRODUCTION, {"model_id": model_id}).first()
    choice = choose_rollback_target(
        rollback_candidates(conn, model_id, requested),
        current.version if current else None,
        requested,
    )
    return current, choice


def rollback_gate(
    conn: Connection, model: LockedModel, choice: Decision[RollbackTarget]
) -> tuple[Decision[Any], ReleasePolicy]:
    """The rollback's verdict and the policy it read: the target choice's refusal, or
    the rollback gate on the chosen target's facts (its ``evidence``: ``RollbackFacts``)."""
    policy, policy_version = policy_of(conn, model.id)
    target = choice.evidence.target
    if not choice.ok or target is None:
        return choice, policy
    facts = rollback_facts(conn, model, target, choice.evidence.current, policy, policy_version)
    return gates.rollback(policy, facts), policy


def rollback_candidates(
    conn: Connection, model_id: int, requested: int | None
) -> list[ProductionChange]:
    """The part of the Production timeline a rollback decision reads, from two
    indexed lookups instead of the whole event log.

    ``choose_rollback_target`` takes the latest entry of a version that is not
    the current one and was never rolled away from (or the requested version, if
    it ever entered). Each version row keeps the generation of its latest entry
    into Production and whether a rollback left it, both written in the same
    transaction as the event that says so; a test replays the full event-log
    timeline through the same policy and checks both agree.
    """
    rows = list(conn.execute(_LAST_SERVED, {"model_id": model_id}))
    if requested is not None:
        rows += conn.execute(_SERVED_AT, {"model_id": model_id, "version": requested}).all()
    entries = sorted({(r.served_generation, r.version) for r in rows})
    return [ProductionChange(seq, entered=version, left=None) for seq, version in entries]


def production_timeline(conn: Connection, model_id: int) -> list[ProductionChange]:
    """Every change of the Production pointer of a model, in sequence order."""
    rows = conn.execute(_PRODUCTION_TIMELINE, {"model_id": model_id})
    return [change for row in rows if (change := _production_change(row)) is not None]


def _production_timeline() -> Select[Any]:
    """Rollbacks and Production stage moves as two reads of the (model_id, kind, seq)
    index, merged by seq. One ``kind = 'rollback' OR kind = 'stage'`` condition made
    the planner walk every event of the model: 41 ms among 100,000 registrations
    (``history --at``, a rollback's choice), against 0.2 ms this way."""
    e = events_table
    production = Stage.PRODUCTION.value
    columns = (e.c.seq, e.c.kind, e.c.version, e.c.from_value, e.c.to_value)
    model = e.c.model_id == bindparam("model_id")
    rollbacks = select(*columns).where(model, e.c.kind == "rollback")
    stage_moves = select(*columns).where(
        model, e.c.kind == "stage", or_(e.c.to_value == production, e.c.from_value == production)
    )
    both = union_all(rollbacks, stage_moves).subquery()
    return select(*both.c).order_by(both.c.seq)


_PRODUCTION_TIMELINE = _production_timeline()


def _production_change(row: object) -> ProductionChange | None:
    seq, kind, version = row.seq, row.kind, row.version  # type: ignore[attr-defined]
    from_value, to_value = row.from_value, row.to_value  # type: ignore[attr-defined]
    if kind == "rollback":
        left = int(from_value) if from_value else None
        return ProductionChange(seq, entered=int(to_value), left=left, rollback=True)
    if to_value == Stage.PRODUCTION.value:
        return ProductionChange(seq, entered=version, left=None)
    if from_value == Stage.PRODUCTION.value:
        return ProductionChange(seq, entered=None, left=version)
    return None
