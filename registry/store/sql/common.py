"""Pieces every SQL store module shares: the model lock, event append, row loading."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from registry.errors import Conflict, NotFound
from registry.models import ArtifactRef, Event, ModelVersion, Stage
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    event_counter_table,
    events_table,
    models_table,
    versions_table,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LockedModel:
    id: int
    name: str
    generation: int


# Hot-path statements are built once: their cache keys are memoised, so executing
# them with a parameter dict skips SQLAlchemy's per-call statement construction.
_LOCK_MODEL = (
    select(models_table.c.id, models_table.c.generation)
    .where(models_table.c.name == bindparam("name"))
    .with_for_update()
)
_BUMP_GENERATION = (
    update(models_table)
    .where(models_table.c.id == bindparam("model_id"))
    .values(generation=bindparam("generation"), updated_at=bindparam("now"))
)
_NEXT_SEQ = (
    update(event_counter_table)
    .where(event_counter_table.c.id == 1)
    .values(seq=event_counter_table.c.seq + 1)
    .returning(event_counter_table.c.seq)
)
_INSERT_EVENT = insert(events_table)
_VERSION_ID = select(versions_table.c.id, versions_table.c.stage).where(
    versions_table.c.model_id == bindparam("model_id"),
    versions_table.c.version == bindparam("version"),
)


def lock_model(conn: Connection, name: str) -> LockedModel:
    """Lock the model row for this transaction (FOR UPDATE on PostgreSQL; SQLite
    writers already hold the database lock from ``BEGIN IMMEDIATE``)."""
    row = conn.execute(_LOCK_MODEL, {"name": name}).first()
    if row is None:
        raise NotFound(f"model {name!r} not found")
    return LockedModel(row.id, name, row.generation)


def check_generation(model: LockedModel, expected: int | None) -> None:
    """Refuse a caller whose view of the model is stale (it holds the model lock)."""
    if expected is not None and expected != model.generation:
        raise Conflict(
            f"stale generation for {model.name!r}: expected {expected}, "
            f"current is {model.generation}; re-read and retry"
        )


def bump_generation(conn: Connection, model: LockedModel, expected: int | None) -> int:
    """Compare-and-swap the generation; the caller holds the model lock."""
    check_generation(model, expected)
    new = model.generation + 1
    conn.execute(_BUMP_GENERATION, {"model_id": model.id, "generation": new, "now": utcnow()})
    return new


def append_event(
    conn: Connection,
    model: LockedModel,
    *,
    kind: str,
    actor: str,
    generation: int,
    version: int | None = None,
    subject: str | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> Event:
    seq = conn.execute(_NEXT_SEQ).scalar_one()
    values: dict[str, Any] = {
        "seq": seq,
        "at": at or utcnow(),
        "model_id": model.id,
        "model_name": model.name,
        "version": version,
        "kind": kind,
        "subject": subject,
        "from_value": from_value,
        "to_value": to_value,
        "actor": actor,
        "reason": reason,
        "generation": generation,
    }
    conn.execute(_INSERT_EVENT, values)
    values["model"] = values.pop("model_name")
    del values["model_id"]
    return Event(**values)


EVENT_COLUMNS = (
    events_table.c.seq,
    events_table.c.at,
    events_table.c.model_name,
    events_table.c.version,
    events_table.c.kind,
    events_table.c.subject,
    events_table.c.from_value,
    events_table.c.to_value,
    events_table.c.actor,
    events_table.c.reason,
    events_table.c.generation,
)


def event_from_row(row: Row[Any, *tuple[Any, ...]]) -> Event:
    data = row._asdict()
    data["model"] = data.pop("model_name")
    return Event(**data)


def load_versions(conn: Connection, ids: Sequence[int]) -> list[ModelVersion]:
    """Full domain objects for version ids, in the order given."""
    if not ids:
        return []
    v, m = versions_table, models_table
    rows = conn.execute(
        select(v, m.c.name.label("model_name"))
        .join(m, m.c.id == v.c.model_id)
        .where(v.c.id.in_(ids))
    ).all()
    attrs: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in ids}
    for a in conn.execute(select(attributes_table).where(attributes_table.c.version_id.in_(ids))):
        value = a.num if a.kind == "metric" else a.text
        attrs[a.version_id].setdefault(a.kind, {})[a.key] = value
    aliases: dict[int, list[str]] = {}
    for a in conn.execute(
        select(aliases_table.c.version_id, aliases_table.c.alias)
        .where(aliases_table.c.version_id.in_(ids))
        .order_by(aliases_table.c.alias)
    ):
        aliases.setdefault(a.version_id, []).append(a.alias)
    by_id = {r.id: _version(r, attrs[r.id], aliases.get(r.id, ())) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _version(
    row: Row[Any], attrs: dict[str, dict[str, Any]], aliases: Iterable[str]
) -> ModelVersion:
    return ModelVersion(
        name=row.model_name,
        version=row.version,
        stage=Stage(row.stage),
        aliases=tuple(aliases),
        artifact=ArtifactRef(
            uri=row.artifact_uri, sha256=row.sha256, size=row.size, format=row.format
        ),
        signature=row.signature,
        metrics=attrs.get("metric", {}),
        # Params keep their original JSON types in the row; the attribute table is for search.
        params=row.params or {},
        tags=attrs.get("tag", {}),
        lineage=row.lineage or {},
        environment=row.environment or {},
        run_id=row.run_id,
        idempotency_key=row.idempotency_key,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def version_id(conn: Connection, model_id: int, version: int, name: str) -> tuple[int, Stage]:
    row = conn.execute(_VERSION_ID, {"model_id": model_id, "version": version}).first()
    if row is None:
        raise NotFound(f"version {version} of model {name!r} not found")
    return row.id, Stage(row.stage)


def require_model(conn: Connection, name: str) -> int:
    model_id = conn.execute(select(models_table.c.id).where(models_table.c.name == name)).scalar()
    if model_id is None:
        raise NotFound(f"model {name!r} not found")
    return int(model_id)
