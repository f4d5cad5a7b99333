"""App releases: the feature schema a release's code sends, and the versions it uses.

A release is immutable once created; a binding pins a version or follows a pointer
(``production`` or an alias), and is refused (recorded) on model-code skew.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import (
    AppRelease,
    Binding,
    EventDetails,
    Signature,
    Stage,
    check_alias,
    check_app,
    check_model_name,
    check_name_page,
    check_release,
    check_version,
)
from registry.release import gates
from registry.release.decision import Decision
from registry.store.sql.common import (
    LockedModel,
    append_event,
    lock_model,
    utcnow,
    version_id,
)
from registry.store.sql.facts import (
    CANDIDATE,
    PRODUCTION_ROW,
    Recorder,
    check_reason,
    json_value,
    signature_of,
)
from registry.store.sql.schema import aliases_table, models_table, versions_table
from registry.store.sql.schema_contract import (
    app_releases_table,
    bindings_table,
    policies_table,
)
from registry.store.sql.schema_release import checks_table, replicas_table
from registry.store.sql.subject_index import erasure_problems

_v, _c, _r = versions_table, checks_table, replicas_table
_p, _ar, _b = policies_table, app_releases_table, bindings_table


class AppReleasesMixin(Recorder):
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

    def list_app_releases(
        self, app: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[AppRelease]:
        if app is not None:
            check_app(app)
        check_name_page(limit, after, "an app release (APP@RELEASE)")
        with self.db.read() as conn:
            if after is None:
                return _releases(conn, app, None, limit=limit)
            last_app, _, last_release = after.partition("@")
            last = conn.execute(
                select(_ar.c.app, _ar.c.id).where(
                    _ar.c.app == last_app, _ar.c.release == last_release
                )
            ).first()
            if last is None:
                raise InvalidInput(f"after: no app release {after!r}")
            return _releases(conn, app, None, limit=limit, after=(last.app, last.id))

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
    signature = signature_of(conn.execute(CANDIDATE, {"vid": vid}).one().signature)
    schema = Signature.model_validate(json_value(row.schema_doc))
    report = None if signature is None else skew(signature, schema)
    facts = gates.ReleaseSkew(
        app=app,
        release=release,
        follow=follow or f"v{version}",
        problems=() if report is None else tuple(report.lines()),
        summary="" if report is None else report.summary(),
    )
    decision = gates.binding(facts, version=version, has_signature=signature is not None)
    erasures = erasure_problems(conn, model.id, model.name, version, vid)
    return Decision.of([*decision.reasons, *erasures], facts) if erasures else decision


def _pointer_version(conn: Connection, model: LockedModel, follow: str | None) -> int | None:
    if follow == "production":
        row = conn.execute(PRODUCTION_ROW, {"model_id": model.id}).first()
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


def _releases(
    conn: Connection,
    app: str | None,
    release: str | None,
    *,
    limit: int | None = None,
    after: tuple[str, int] | None = None,
) -> list[AppRelease]:
    query = select(_ar).order_by(_ar.c.app, _ar.c.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(_ar.c.app, _ar.c.id) > tuple_(*after))
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
            feature_schema=Signature.model_validate(json_value(r.schema_doc)),
            description=r.description,
            created_by=r.created_by,
            created_at=r.created_at,
            bindings=tuple(bindings.get(r.id, ())),
        )
        for r in rows
    ]
