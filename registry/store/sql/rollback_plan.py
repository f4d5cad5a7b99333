"""The rollback as a dry run: which version ``rollback`` would restore now, why, and
whether it would go through.

The choice and the verdict come from the functions the rollback itself calls
(``rollback_choice`` and ``rollback_gate`` in ``pointers``), so a plan can never
disagree with the rollback that follows it at the same generation: ``safe`` is "the
rollback would go through" and ``problems`` are its refusal's reasons word for word.
Around that verdict the plan shows what an on-call engineer checks first: the target's
replica in each region of the policy, every app release bound to the model, and the
target's latest checks. It reads only; it appends no event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, func, select

from registry.errors import NotFound
from registry.models import check_model_name, check_plan_names, check_version
from registry.release import gates
from registry.release.decision import Decision
from registry.release.policy import Gate, ReleasePolicy
from registry.release.transitions import RollbackTarget
from registry.release_models import (
    PlanCheck,
    PlanRegion,
    PlanRelease,
    RollbackPlan,
)
from registry.store.sql.common import LockedModel, version_id
from registry.store.sql.facts import Recorder
from registry.store.sql.pointers import rollback_choice, rollback_gate
from registry.store.sql.schema import events_table, models_table, versions_table
from registry.store.sql.schema_contract import app_releases_table, bindings_table
from registry.store.sql.schema_release import checks_table, replicas_table

_v, _m, _e = versions_table, models_table, events_table
_c, _r, _ar, _b = checks_table, replicas_table, app_releases_table, bindings_table
PRODUCTION_FOLLOW = "production"


class RollbackPlanMixin(Recorder):
    def rollback_plan(self, name: str, *, to: int | None = None) -> RollbackPlan:
        check_model_name(name)
        if to is not None:
            check_version(to)
        with self.db.read() as conn:
            (model,) = _models(conn, [name])
            return _plan(conn, model, to, explain=True)

    def rollback_plans(
        self, names: Sequence[str] | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[RollbackPlan]:
        wanted = check_plan_names(names, limit, after)
        with self.db.read() as conn:
            # Without the entry's time and actor (a walk of the event log per model):
            # ``modelreg models`` shows only the target and whether it is safe.
            models = _models(conn, wanted, limit=limit, after=after)
            return [_plan(conn, m, None, explain=False) for m in models]


_MODELS = select(_m.c.id, _m.c.name, _m.c.generation).order_by(_m.c.name)


def _models(
    conn: Connection, names: list[str] | None, *, limit: int | None = None, after: str | None = None
) -> list[LockedModel]:
    """The named models (``NotFound`` for one that does not exist), or a page of the
    models that are not a deleted one's tombstone, by name."""
    if names is None:
        where = ~_m.c.name.startswith("~")
        if after is not None:
            where = and_(where, _m.c.name > after)
        rows = conn.execute(_MODELS.where(where).limit(limit)).all()
    else:
        rows = conn.execute(_MODELS.where(_m.c.name.in_(names))).all() if names else []
        missing = set(names) - {r.name for r in rows}
        if missing:
            raise NotFound(f"model {min(missing)!r} not found")
    return [LockedModel(r.id, r.name, r.generation) for r in rows]


def _plan(conn: Connection, model: LockedModel, to: int | None, *, explain: bool) -> RollbackPlan:
    _current, choice = rollback_choice(conn, model.id, to)
    decision, policy = rollback_gate(conn, model, choice)
    current, target = choice.evidence.current, choice.evidence.target
    plan = RollbackPlan(
        name=model.name,
        current=current,
        target=target,
        why="; ".join(choice.reasons),
        safe=decision.ok,
        problems=decision.reasons,
        generation=model.generation,
    )
    if target is None:
        return plan
    facts = decision.evidence
    assert isinstance(facts, gates.RollbackFacts)
    vid, _stage = version_id(conn, model.id, target, model.name)
    releases = _releases(conn, model, facts)
    checks = _latest_checks(conn, vid)
    return plan.model_copy(
        update={
            "why": _why(conn, model, vid, choice, to) if explain else _short_why(choice, to),
            "regions": _regions(conn, vid, facts),
            "releases": releases,
            "checks": checks,
            "warnings": _warnings(policy, releases, checks),
        }
    )


# ---------------------------------------------------------------- why this version


def _short_why(choice: Decision[RollbackTarget], to: int | None) -> str:
    target, current = choice.evidence.target, choice.evidence.current
    if to is not None:
        return f"v{target} was asked for; it served in Production before"
    if current is None:
        return f"v{target} is the latest version that served in Production (none serves now)"
    return f"v{target} is the latest version to serve in Production before v{current}"


_SERVED = select(_v.c.served_generation).where(_v.c.id == bindparam("vid"))
# The event that put the target in Production last: its generation is the one the
# version row keeps (written in the same transaction).
_ENTRY = (
    select(_e.c.seq, _e.c.at, _e.c.actor, _e.c.kind)
    .where(
        _e.c.model_id == bindparam("model_id"),
        _e.c.generation == bindparam("generation"),
        _e.c.version == bindparam("version"),
        _e.c.kind.in_(("stage", "rollback")),
    )
    .order_by(_e.c.seq.desc())
    .limit(1)
)
# Versions a rollback moved away from since the target entered: each served after it,
# and the rollback skips them (they were rolled back for a reason). Read from the few
# rollback events after the entry, not from a scan of the model's versions.
_ROLLED_AWAY = (
    select(_e.c.from_value)
    .where(
        _e.c.model_id == bindparam("model_id"),
        _e.c.kind == "rollback",
        _e.c.seq > bindparam("seq"),
    )
    .order_by(_e.c.seq)
)


def _why(
    conn: Connection,
    model: LockedModel,
    vid: int,
    choice: Decision[RollbackTarget],
    to: int | None,
) -> str:
    """The choice in words, with when and by whom the target last entered Production
    and which later versions the rule skipped."""
    target = choice.evidence.target
    generation = conn.execute(_SERVED, {"vid": vid}).scalar()
    entry = conn.execute(
        _ENTRY, {"model_id": model.id, "generation": generation, "version": target}
    ).first()
    why = _short_why(choice, to)
    if entry is None:
        return why
    how = "a rollback" if entry.kind == "rollback" else "a promotion"
    why += f" (entered it {_minute(entry.at)} by {entry.actor}, {how})"
    if to is None:
        params = {"model_id": model.id, "seq": entry.seq}
        left = conn.execute(_ROLLED_AWAY, params).scalars()
        serving = {str(target), str(choice.evidence.current)}  # one rolled back to since
        skipped = [f"v{v}" for v in dict.fromkeys(left) if v and v not in serving]
        if skipped:
            why += f"; skipped {', '.join(skipped)}: a rollback moved away from each"
    return why


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- what it rests on


_REPLICA_TIMES = select(_r.c.region, _r.c.verified_at).where(_r.c.version_id == bindparam("vid"))


def _regions(conn: Connection, vid: int, facts: gates.RollbackFacts) -> tuple[PlanRegion, ...]:
    """The gate's view of each region of the policy, with when the replica was verified."""
    verified_at: dict[str, datetime | None] = {
        r.region: r.verified_at for r in conn.execute(_REPLICA_TIMES, {"vid": vid})
    }
    return tuple(
        PlanRegion(
            region=r.region,
            replica=r.replica,
            verified_at=verified_at.get(r.region) if r.verified else None,
            error=r.replica_error,
        )
        for r in facts.regions
    )


_OTHER_BINDINGS = (
    select(_ar.c.app, _ar.c.release, _b.c.follow, _v.c.version)
    .join(_ar, _ar.c.id == _b.c.release_id)
    .outerjoin(_v, _v.c.id == _b.c.version_id)
    .where(
        _b.c.model_id == bindparam("model_id"),
        (_b.c.follow != PRODUCTION_FOLLOW) | _b.c.follow.is_(None),
    )
)


def _releases(
    conn: Connection, model: LockedModel, facts: gates.RollbackFacts
) -> tuple[PlanRelease, ...]:
    """Every app release bound to the model: those following Production as the gate
    judged them (the rollback hands them the target), the others unaffected."""
    found = []
    for skew in facts.releases:
        reasons = gates.skew_problems(facts.target, facts.has_signature, (skew,))
        found.append(
            PlanRelease(
                release=skew.label,
                follow=skew.follow,
                compatible=not reasons,
                reason=reasons[0] if reasons else f"v{facts.target} takes what it sends",
            )
        )
    for row in conn.execute(_OTHER_BINDINGS, {"model_id": model.id}):
        if row.follow is None:
            reason = f"pinned to v{row.version}: a rollback does not change it"
        else:
            reason = f"follows {row.follow}: a rollback does not move it"
        found.append(
            PlanRelease(
                release=f"{row.app}@{row.release}",
                follow=row.follow,
                pinned=row.version if row.follow is None else None,
                compatible=True,
                reason=reason,
            )
        )
    return tuple(sorted(found, key=lambda r: r.release))


# The newest check of each (kind, region): max(id) per group from the (version_id,
# kind, id) index, however many checks a health worker has recorded.
_LATEST_IDS = (
    select(func.max(_c.c.id))
    .where(_c.c.version_id == bindparam("vid"))
    .group_by(_c.c.kind, _c.c.region)
)
_CHECKS = select(_c.c.kind, _c.c.region, _c.c.passed, _c.c.recorded_at).where(
    _c.c.id.in_(_LATEST_IDS.scalar_subquery())
)


def _latest_checks(conn: Connection, vid: int) -> tuple[PlanCheck, ...]:
    rows = conn.execute(_CHECKS, {"vid": vid}).all()
    checks = [
        PlanCheck(kind=r.kind, region=r.region, passed=bool(r.passed), at=r.recorded_at)
        for r in rows
    ]
    return tuple(sorted(checks, key=lambda c: (c.kind, c.region or "")))


def _warnings(
    policy: ReleasePolicy, releases: tuple[PlanRelease, ...], checks: tuple[PlanCheck, ...]
) -> tuple[str, ...]:
    """What the rollback does not gate on but should be seen before it: the emergency
    path asks for no health or canary, and checks signatures only if the policy does."""
    warnings = [
        f"latest {c.kind} check{f' in {c.region}' if c.region else ''} failed ({_minute(c.at)})"
        for c in checks
        if not c.passed
    ]
    if Gate.SIGNATURE not in policy.required:
        warnings += [
            f"{r.reason} (not refused: the policy does not require the signature gate)"
            for r in releases
            if not r.compatible
        ]
    return tuple(warnings)
