"""A model's own metadata, renaming, and deleting what never served.

The rules for destructive changes (the MLflow API needs them; ``modelreg`` keeps
them narrow):

- A version is *live* when it serves in Production, carries a protected alias, or is
  bound by an app release; it has *served* when the log shows it in Production once.
- ``delete_version`` refuses a live version, one that has served, one under any alias
  and one in Staging (a stage pointer names it): its bytes and facts are the audit
  trail of what ran, and archiving is how it leaves. Otherwise the version's rows
  go, and a ``version.deleted`` event stays in the history.
- ``delete_model`` refuses when any version is live or has served. Otherwise every
  version goes, and the model row is kept under a tombstone name (``~deleted/ID/NAME``,
  which no model name can equal, and which listings skip) with its whole history and a
  ``model.deleted`` event: the name is free again, and nothing of the log is lost.
- ``rename_model`` refuses a model with a live version: resolvers and app releases
  name it, and a rename would break them mid-flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, exists, func, insert, select, update

from registry.errors import Conflict, InvalidInput
from registry.models import RegisteredModel, Stage, check_key, check_model_name
from registry.store.sql.common import (
    LockedModel,
    append_event,
    lock_model,
    utcnow,
    version_id,
)
from registry.store.sql.engine import Database
from registry.store.sql.facts import policy_of
from registry.store.sql.pointers import production_timeline
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    datasets_table,
    model_tags_table,
    models_table,
    versions_table,
)
from registry.store.sql.schema_contract import bindings_table
from registry.store.sql.schema_release import checks_table, replicas_table

TOMBSTONE = "~deleted/"  # no model name starts with "~" (MODEL_NAME_RE)
# Every table whose rows belong to one version (the bindings are checked, never deleted).
_VERSION_ROWS = (attributes_table, datasets_table, replicas_table, checks_table, aliases_table)


class LifecycleMixin:
    db: Database
    actor: str
    origin: Any

    if TYPE_CHECKING:

        def get_model(self, name: str) -> RegisteredModel: ...  # VersionsMixin's

    def update_model(
        self,
        name: str,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        check_model_name(name)
        for key in tags or {}:
            check_key(key, "tag")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            for key, value in (tags or {}).items():
                self._set_model_tag(conn, model, key, value)
            if description is not None:
                conn.execute(
                    update(models_table)
                    .where(models_table.c.id == model.id)
                    .values(description=description, updated_at=utcnow())
                )
                self._event(conn, model, kind="description", to_value=description)
        return self.get_model(name)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        check_model_name(name)
        check_model_name(new_name)
        if new_name == name:
            raise InvalidInput(f"model {name!r} already has that name")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            live = _live_versions(conn, model)
            if live:
                raise Conflict(
                    f"model {name!r} cannot be renamed while {_describe(live)}: resolvers and "
                    "app releases name it"
                )
            taken = conn.execute(select(models_table.c.id).where(models_table.c.name == new_name))
            if taken.first() is not None:
                raise Conflict(f"model {new_name!r} already exists")
            conn.execute(
                update(models_table)
                .where(models_table.c.id == model.id)
                .values(name=new_name, updated_at=utcnow())
            )
            renamed = LockedModel(model.id, new_name, model.generation)
            self._event(conn, renamed, kind="model.renamed", from_value=name, to_value=new_name)
        return self.get_model(new_name)

    def delete_version(self, name: str, version: int) -> None:
        check_model_name(name)
        with self.db.write() as conn:
            model = lock_model(conn, name)
            vid, stage = version_id(conn, model.id, version, name)
            reason = _keeps(conn, model, {version: vid}).get(version)
            if reason is not None:
                raise Conflict(f"version {version} of {name!r} cannot be deleted: {reason}")
            _delete_versions(conn, [vid])
            conn.execute(
                update(models_table)
                .where(models_table.c.id == model.id)
                .values(updated_at=utcnow())
            )
            self._event(conn, model, kind="version.deleted", version=version, from_value=stage)

    def delete_model(self, name: str) -> None:
        check_model_name(name)
        with self.db.write() as conn:
            model = lock_model(conn, name)
            rows = conn.execute(
                select(versions_table.c.version, versions_table.c.id).where(
                    versions_table.c.model_id == model.id
                )
            ).all()
            ids = {int(r.version): int(r.id) for r in rows}
            kept = _keeps(conn, model, ids, whole_model=True)
            if kept:
                raise Conflict(f"model {name!r} cannot be deleted: {_describe(kept)}")
            _delete_versions(conn, list(ids.values()))
            conn.execute(delete(aliases_table).where(aliases_table.c.model_id == model.id))
            conn.execute(delete(model_tags_table).where(model_tags_table.c.model_id == model.id))
            self._event(conn, model, kind="model.deleted", from_value=name)
            tombstone = f"{TOMBSTONE}{model.id}/{name}"
            conn.execute(
                update(models_table).where(models_table.c.id == model.id).values(name=tombstone)
            )

    # -- helpers ---------------------------------------------------------------------
    def _set_model_tag(
        self, conn: Connection, model: LockedModel, key: str, value: str | None
    ) -> None:
        t = model_tags_table
        old = conn.execute(
            select(t.c.value).where(t.c.model_id == model.id, t.c.key == key)
        ).scalar()
        if old == value:
            return
        conn.execute(delete(t).where(t.c.model_id == model.id, t.c.key == key))
        if value is not None:
            conn.execute(insert(t).values(model_id=model.id, key=key, value=value))
        self._event(conn, model, kind="tags", subject=key, from_value=old, to_value=value)

    def _event(self, conn: Connection, model: LockedModel, *, kind: str, **values: Any) -> None:
        append_event(
            conn,
            model,
            kind=kind,
            actor=self.actor,
            origin=self.origin,
            generation=model.generation,
            **values,
        )


def _live_versions(
    conn: Connection, model: LockedModel, *, any_alias: bool = True
) -> dict[int, str]:
    """Versions that serve now (number -> why): in Production, under an alias (only a
    protected one unless ``any_alias``), or bound; key 0 if a binding follows a pointer."""
    policy, _version = policy_of(conn, model.id)
    v = versions_table
    live: dict[int, str] = {}
    production = conn.execute(
        select(v.c.version).where(v.c.model_id == model.id, v.c.stage == Stage.PRODUCTION.value)
    )
    for (number,) in production:
        live[int(number)] = "serves in Production"
    aliased = conn.execute(
        select(aliases_table.c.alias, v.c.version)
        .join(v, v.c.id == aliases_table.c.version_id)
        .where(aliases_table.c.model_id == model.id)
    )
    for alias, number in aliased:
        if policy.is_protected(alias):
            live.setdefault(int(number), f"carries the protected alias {alias!r}")
        elif any_alias:
            live.setdefault(int(number), f"carries the alias {alias!r} (move or delete it first)")
    bound = conn.execute(
        select(func.count())
        .select_from(bindings_table)
        .where(bindings_table.c.model_id == model.id)
    ).scalar()
    if bound:
        for row in conn.execute(
            select(v.c.version)
            .join(bindings_table, bindings_table.c.version_id == v.c.id)
            .where(bindings_table.c.model_id == model.id)
        ):
            live.setdefault(int(row.version), "is bound by an app release")
        follows = conn.execute(
            select(
                exists().where(
                    bindings_table.c.model_id == model.id, bindings_table.c.version_id.is_(None)
                )
            )
        ).scalar()
        if follows:
            live.setdefault(0, "an app release follows one of its pointers")
    return live


def _keeps(
    conn: Connection, model: LockedModel, ids: Mapping[int, int], *, whole_model: bool = False
) -> dict[int, str]:
    """Of these versions (number -> row id), the ones that must stay, and why (key 0: an
    app release follows one of the model's pointers, which blocks deleting the model)."""
    live = _live_versions(conn, model, any_alias=not whole_model)
    kept = {n: why for n, why in live.items() if n in ids or (whole_model and n == 0)}
    served = {c.entered for c in production_timeline(conn, model.id) if c.entered is not None}
    for number in ids:
        if number in served:
            kept.setdefault(number, "served in Production (archive it instead: its history stays)")
    if whole_model:  # a model goes with its Staging versions and plain aliases
        return kept
    # Staging is a stage pointer too: a release may be about to promote the version.
    staged = conn.execute(
        select(versions_table.c.version).where(
            versions_table.c.model_id == model.id,
            versions_table.c.stage == Stage.STAGING.value,
        )
    )
    for (number,) in staged:
        if int(number) in ids:
            kept.setdefault(int(number), "is in Staging (move it to Archived first)")
    return kept


def _delete_versions(conn: Connection, ids: list[int]) -> None:
    if not ids:
        return
    for table in _VERSION_ROWS:
        conn.execute(delete(table).where(table.c.version_id.in_(ids)))
    conn.execute(delete(versions_table).where(versions_table.c.id.in_(ids)))


def _describe(live: Mapping[int, str]) -> str:
    number = min(live)
    text = live[number] if number == 0 else f"version {number} {live[number]}"
    return text + (f" (and {len(live) - 1} more)" if len(live) > 1 else "")
