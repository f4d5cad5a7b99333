"""Registered models and their versions: creation, registration, reads, mutable fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, NotFound
from registry.models import (
    ArtifactRef,
    ModelVersion,
    Origin,
    RegisteredModel,
    Stage,
    VersionCreate,
    check_key,
    check_model_name,
    check_model_page,
    check_version,
    check_version_page,
)
from registry.store.sql.common import (
    EVENT_COLUMNS,
    LockedModel,
    append_event,
    event_from_row,
    load_versions,
    lock_model,
    require_model,
    utcnow,
    version_id,
)
from registry.store.sql.driver import execute
from registry.store.sql.engine import Database
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    datasets_table,
    events_table,
    model_tags_table,
    models_table,
    versions_table,
)
from registry.store.sql.subject_index import close_by_retrain

_ALLOCATE_VERSION = (
    update(models_table)
    .where(models_table.c.name == bindparam("m_name"))
    .values(last_version=models_table.c.last_version + 1, updated_at=bindparam("m_now"))
    .returning(models_table.c.id, models_table.c.last_version, models_table.c.generation)
)
_INSERT_VERSION = insert(versions_table).returning(versions_table.c.id)
_INSERT_ATTRIBUTES = insert(attributes_table)
_INSERT_DATASETS = insert(datasets_table)


class VersionsMixin:
    db: Database
    actor: str
    origin: Origin | None

    # ------------------------------------------------------------ models

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        check_model_name(name)
        for key in tags or {}:
            check_key(key, "tag")
        with self.db.write() as conn:
            if self._insert_model(conn, name) is None:
                raise Conflict(f"model {name!r} already exists")
            model = lock_model(conn, name)
            if description is not None:
                conn.execute(
                    update(models_table)
                    .where(models_table.c.id == model.id)
                    .values(description=description)
                )
            if tags:
                conn.execute(
                    insert(model_tags_table),
                    [{"model_id": model.id, "key": k, "value": v} for k, v in tags.items()],
                )
        return self.get_model(name)

    def _insert_model(self, conn: Connection, name: str) -> int | None:
        """Insert the model row if absent (race-safe); its id if this call created it."""
        now = utcnow()
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        stmt = (
            dialect_insert(models_table)
            .values(name=name, generation=0, last_version=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(models_table.c.id)
        )
        model_id = conn.execute(stmt).scalar()
        if model_id is not None:
            model = LockedModel(model_id, name, 0)
            append_event(
                conn,
                model,
                kind="model.created",
                actor=self.actor,
                origin=self.origin,
                generation=0,
                at=now,
            )
        return model_id

    def get_model(self, name: str) -> RegisteredModel:
        check_model_name(name)
        models = self._models(models_table.c.name == name)
        if not models:
            raise NotFound(f"model {name!r} not found")
        return models[0]

    def list_models(self, *, limit: int = 1000, after: str | None = None) -> list[RegisteredModel]:
        check_model_page(limit, after)
        # Deleted models keep their history under a tombstone name (``lifecycle``).
        where = ~models_table.c.name.startswith("~")
        if after is not None:
            where = and_(where, models_table.c.name > after)
        return self._models(where, limit=limit)

    def _models(self, where: Any, *, limit: int | None = None) -> list[RegisteredModel]:
        m, v = models_table, versions_table
        with self.db.read() as conn:
            query = select(m).order_by(m.c.name).limit(limit)
            if where is not None:
                query = query.where(where)
            rows = conn.execute(query).all()
            ids = [r.id for r in rows]
            if not ids:
                return []
            pointers: dict[int, dict[str, Any]] = {i: {"staging": [], "aliases": {}} for i in ids}
            for r in conn.execute(
                select(v.c.model_id, v.c.version, v.c.stage).where(
                    v.c.model_id.in_(ids),
                    v.c.stage.in_([Stage.PRODUCTION, Stage.STAGING]),
                )
            ):
                if r.stage == Stage.PRODUCTION:
                    pointers[r.model_id]["production"] = r.version
                else:
                    pointers[r.model_id]["staging"].append(r.version)
            for r in conn.execute(
                select(aliases_table.c.model_id, aliases_table.c.alias, v.c.version)
                .join(v, v.c.id == aliases_table.c.version_id)
                .where(aliases_table.c.model_id.in_(ids))
            ):
                pointers[r.model_id]["aliases"][r.alias] = r.version
            tags: dict[int, dict[str, str]] = {}
            for r in conn.execute(
                select(model_tags_table).where(model_tags_table.c.model_id.in_(ids))
            ):
                tags.setdefault(r.model_id, {})[r.key] = r.value
            last_seq = (
                select(func.max(events_table.c.seq))
                .where(events_table.c.model_id.in_(ids))
                .group_by(events_table.c.model_id)
            )
            last = {
                e.model: e
                for e in map(
                    event_from_row,
                    conn.execute(select(*EVENT_COLUMNS).where(events_table.c.seq.in_(last_seq))),
                )
            }
        return [
            RegisteredModel(
                name=r.name,
                description=r.description,
                tags=tags.get(r.id, {}),
                generation=r.generation,
                latest_version=r.last_version,
                production=pointers[r.id].get("production"),
                staging=tuple(sorted(pointers[r.id]["staging"])),
                aliases=dict(sorted(pointers[r.id]["aliases"].items())),
                created_at=r.created_at,
                updated_at=r.updated_at,
                last_event=last.get(r.name),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ register

    def register(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> ModelVersion:
        check_model_name(name)
        meta = VersionCreate.parse(meta)
        # Everything but the ids and the time is built before the write lock: writers
        # queue on it. The time is taken under it, so event times follow their seqs.
        rows = _VersionRows.of(artifact, meta, self.actor)
        with self.db.write() as conn:
            if meta.idempotency_key is not None:
                existing = self._replayed(conn, name, artifact, meta.idempotency_key)
                if existing is not None:
                    return load_versions(conn, [existing])[0]
            model, number = self._allocate_version(conn, name)
            now = utcnow()
            self._insert_version(conn, model, number, rows, now)
            append_event(
                conn,
                model,
                kind="version.registered",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                version=number,
                to_value=artifact.sha256,
                at=now,
            )
            close_by_retrain(
                conn, model, number, rows.datasets, actor=self.actor, origin=self.origin, at=now
            )
        return ModelVersion(
            name=name,
            version=number,
            stage=Stage.NONE,
            artifact=artifact,
            signature=meta.signature,
            metrics=meta.metrics,
            params=meta.params,
            tags=meta.tags,
            lineage=meta.lineage,
            environment=meta.environment,
            run_id=meta.run_id,
            idempotency_key=meta.idempotency_key,
            description=meta.description,
            created_by=self.actor,
            created_at=now,
        )

    def _replayed(self, conn: Connection, name: str, artifact: ArtifactRef, key: str) -> int | None:
        """The version an idempotency key already created (under the model lock)."""
        if self._insert_model(conn, name) is not None:
            return None
        model = lock_model(conn, name)
        row = conn.execute(
            select(versions_table.c.id, versions_table.c.sha256, versions_table.c.version).where(
                versions_table.c.model_id == model.id,
                versions_table.c.idempotency_key == key,
            )
        ).first()
        if row is None:
            return None
        if row.sha256 != artifact.sha256:
            raise Conflict(
                f"idempotency key {key!r} already registered version {row.version} "
                f"of {name!r} with a different artifact"
            )
        return int(row.id)

    def _allocate_version(self, conn: Connection, name: str) -> tuple[LockedModel, int]:
        """Next version number: an atomic increment under the model row's lock, so
        concurrent registrants never share or skip a number."""
        params = {"m_name": name, "m_now": utcnow()}
        rows = execute(conn, _ALLOCATE_VERSION, params)
        if not rows:
            self._insert_model(conn, name)
            rows = execute(conn, _ALLOCATE_VERSION, params)
        model_id, last_version, generation = rows[0]
        return LockedModel(model_id, name, generation), last_version

    def _insert_version(
        self, conn: Connection, model: LockedModel, number: int, rows: _VersionRows, now: Any
    ) -> int:
        values = {**rows.version, "model_id": model.id, "version": number, "created_at": now}
        row_id: int = execute(conn, _INSERT_VERSION, values)[0][0]
        if rows.attributes:
            execute(
                conn, _INSERT_ATTRIBUTES, [{**a, "version_id": row_id} for a in rows.attributes]
            )
        if rows.datasets:
            execute(conn, _INSERT_DATASETS, [{**d, "version_id": row_id} for d in rows.datasets])
        return row_id

    # ------------------------------------------------------------ reads

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_model_name(name)
        check_version(version)
        with self.db.read() as conn:
            row = conn.execute(
                select(versions_table.c.id)
                .join(models_table, models_table.c.id == versions_table.c.model_id)
                .where(models_table.c.name == name, versions_table.c.version == version)
            ).first()
            if row is None:
                require_model(conn, name)
                raise NotFound(f"version {version} of model {name!r} not found")
            return load_versions(conn, [row.id])[0]

    def list_versions(
        self,
        name: str,
        *,
        limit: int = 1000,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> list[ModelVersion]:
        check_model_name(name)
        check_version_page(limit, stage, before)
        v = versions_table
        with self.db.read() as conn:
            query = select(v.c.id).where(v.c.model_id == require_model(conn, name))
            if stage is not None:
                query = query.where(v.c.stage == _stage(stage).value)  # ix_version_model_stage
            if before is not None:
                query = query.where(v.c.version < before)
            ids = conn.execute(query.order_by(v.c.version.desc()).limit(limit)).scalars().all()
            return load_versions(conn, list(ids))

    # ------------------------------------------------------------ mutable fields

    def update_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        check_model_name(name)
        check_version(version)
        for key in tags or {}:
            check_key(key, "tag")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            vid, _ = version_id(conn, model.id, version, name)
            if tags:
                self._apply_tags(conn, model, version, vid, tags)
            if description is not None:
                conn.execute(
                    update(versions_table)
                    .where(versions_table.c.id == vid)
                    .values(description=description)
                )
                append_event(
                    conn,
                    model,
                    kind="description",
                    actor=self.actor,
                    origin=self.origin,
                    generation=model.generation,
                    version=version,
                    to_value=description,
                )
        return self.get_version(name, version)

    def _apply_tags(
        self,
        conn: Connection,
        model: LockedModel,
        version: int,
        vid: int,
        tags: Mapping[str, str | None],
    ) -> None:
        a = attributes_table
        current = conn.execute(select(versions_table.c.tags).where(versions_table.c.id == vid))
        document: dict[str, str] = dict(current.scalar() or {})
        changed = False
        for key, value in tags.items():
            old = document.get(key)  # the row's document mirrors the tag attribute rows
            if old == value:
                continue
            changed = True
            conn.execute(delete(a).where(a.c.version_id == vid, a.c.kind == "tag", a.c.key == key))
            if value is not None:
                conn.execute(insert(a).values(version_id=vid, kind="tag", key=key, text=value))
                document[key] = value
            else:
                document.pop(key, None)
            append_event(
                conn,
                model,
                kind="tags",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                version=version,
                subject=key,
                from_value=old,
                to_value=value,
            )
        if changed:
            conn.execute(
                update(versions_table).where(versions_table.c.id == vid).values(tags=document)
            )


@dataclass(frozen=True, slots=True)
class _VersionRows:
    """A registration's rows, all but their ids (the model's, the version's number and
    row id), so the work of building them happens outside the write lock."""

    version: dict[str, Any]
    attributes: list[dict[str, Any]]
    datasets: list[dict[str, Any]]

    @classmethod
    def of(cls, artifact: ArtifactRef, meta: VersionCreate, actor: str) -> _VersionRows:
        lineage = meta.lineage
        code = lineage.code
        version = {
            "stage": Stage.NONE.value,
            "artifact_uri": artifact.uri,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "format": artifact.format,
            "signature": meta.signature.model_dump(mode="json") if meta.signature else None,
            "metrics": meta.metrics,
            "params": meta.params,
            "tags": meta.tags,
            "lineage": lineage.model_dump(mode="json", exclude_none=True),
            "environment": meta.environment.model_dump(mode="json", exclude_none=True),
            "run_id": meta.run_id,
            "idempotency_key": meta.idempotency_key,
            "description": meta.description,
            "feature_pipeline": lineage.feature_pipeline,
            "code_commit": code.commit.lower() if code and code.commit else None,
            "rolled_back": False,
            "created_by": actor,
        }
        datasets = [
            {
                "name": d.name,
                "version": d.version,
                "fingerprint": d.fingerprint,
                "rows": d.rows,
                "date_start": d.date_range[0] if d.date_range else None,
                "date_end": d.date_range[1] if d.date_range else None,
            }
            for d in lineage.datasets
        ]
        return cls(version, _attribute_rows(meta), datasets)


def _attribute_rows(meta: VersionCreate) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"kind": "metric", "key": k, "text": None, "num": float(v)} for k, v in meta.metrics.items()
    ]
    for key, value in meta.params.items():
        number = (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
        text = (
            None
            if value is None
            else (str(value).lower() if isinstance(value, bool) else str(value))
        )
        rows.append({"kind": "param", "key": key, "text": text, "num": number})
    rows.extend({"kind": "tag", "key": k, "text": v, "num": None} for k, v in meta.tags.items())
    return rows


def _stage(stage: Stage | str) -> Stage:
    return stage if isinstance(stage, Stage) else Stage.parse(stage)
