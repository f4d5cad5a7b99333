"""Pieces every SQL store module shares: the model lock, event append, row loading."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic_core import from_json
from sqlalchemy import Connection, Row, Text, bindparam, cast, func, insert, select, update

from registry.errors import Conflict, NotFound
from registry.models import (
    ArtifactRef,
    Environment,
    Event,
    EventDetails,
    Lineage,
    ModelVersion,
    Origin,
    Signature,
    Stage,
)
from registry.store.sql.driver import execute
from registry.store.sql.schema import (
    aliases_table,
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
# PostgreSQL delivers a NOTIFY when (and only if) its transaction commits: listeners
# (``registry.store.sql.listen``) hear each event's seq once it is readable. The
# channel is per database, so the payload is a hint to read the feed, nothing more.
EVENTS_CHANNEL = "modelreg_events"
NOTIFY = select(func.pg_notify(EVENTS_CHANNEL, bindparam("payload")))
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


# The events appended in this context, (seq, model), when someone asks: the server sets
# a list per write request (``registry.server.reads.WriteMarks``) to learn what changed.
APPENDED: ContextVar[list[tuple[int, str]] | None] = ContextVar("modelreg_appended", default=None)


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
    details: EventDetails | None = None,
    origin: Origin | None = None,
) -> Event:
    """Append one event (the next ``seq``) in the caller's transaction.

    ``origin`` (the flow run behind the store, if any) goes into the details of
    every event, so the log says which run and deployment made each change.
    """
    if origin is not None:
        details = (details or EventDetails()).model_copy(update={"origin": origin})
    seq = execute(conn, _NEXT_SEQ)[0][0]
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
        "details": None
        if details is None or details.empty
        else details.model_dump(mode="json", exclude_defaults=True),
    }
    execute(conn, _INSERT_EVENT, values)
    appended = APPENDED.get()
    if appended is not None:
        appended.append((seq, model.name))
    if conn.dialect.name == "postgresql":
        conn.execute(NOTIFY, {"payload": str(seq)})
    values["model"] = values.pop("model_name")
    del values["model_id"]
    values["details"] = details or EventDetails()
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
    events_table.c.details,
)


def event_from_row(row: Row[Any, *tuple[Any, ...]]) -> Event:
    """An event from a row of ``EVENT_COLUMNS``. Unpacked by position: a feed or a
    streamed history turns 100,000 rows a second into events, and ``Row._asdict`` was
    a quarter of that time."""
    seq, at, model, version, kind, subject, from_value, to_value, actor, reason, gen, details = row
    return Event(
        seq=seq,
        at=at,
        model=model,
        version=version,
        kind=kind,
        subject=subject,
        from_value=from_value,
        to_value=to_value,
        actor=actor,
        reason=reason,
        generation=gen,
        details=_details(details),
    )


_NO_DETAILS = EventDetails()


def _details(raw: Any) -> EventDetails:
    if raw is None:
        return _NO_DETAILS
    if isinstance(raw, str):
        raw = from_json(raw)
    return EventDetails.model_validate(raw)


def load_versions(conn: Connection, ids: Sequence[int]) -> list[ModelVersion]:
    """Full domain objects for version ids, in the order given.

    One read of the version documents (JSON columns as their stored text) and one
    of the aliases. The nested parts are parsed from that text, and signature,
    lineage and environment through a memo: the same text is the same frozen
    object (versions of a model usually share a signature and environment).
    """
    if not ids:
        return []
    statement = _DOC_STATEMENTS[conn.dialect.name == "sqlite"]
    rows = conn.execute(statement, {"ids": list(ids)}).all()
    aliases: dict[int, list[str]] = {}
    for a in conn.execute(_ALIASES_OF, {"ids": list(ids)}):
        aliases.setdefault(a.version_id, []).append(a.alias)
    by_id = {r.id: _version(r, aliases.get(r.id, ())) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _doc_statement(raw_time: bool) -> Any:
    v, m = versions_table, models_table
    created_at = cast(v.c.created_at, Text) if raw_time else v.c.created_at
    return (
        select(
            v.c.id,
            m.c.name,
            v.c.version,
            v.c.stage,
            v.c.artifact_uri,
            v.c.sha256,
            v.c.size,
            v.c.format,
            *(cast(c, Text).label(c.name) for c in _DOC_JSON_COLUMNS),
            v.c.run_id,
            v.c.idempotency_key,
            v.c.description,
            v.c.created_by,
            created_at.label("created_at"),
        )
        .join(m, m.c.id == v.c.model_id)
        .where(v.c.id.in_(bindparam("ids", expanding=True)))
    )


_DOC_JSON_COLUMNS = (
    versions_table.c.signature,
    versions_table.c.metrics,
    versions_table.c.params,
    versions_table.c.tags,
    versions_table.c.lineage,
    versions_table.c.environment,
)
# SQLite keeps naive UTC text that ``fromisoformat`` reads directly (much faster than
# the generic DateTime processor); PostgreSQL returns timestamptz values.
_DOC_STATEMENTS = {raw: _doc_statement(raw) for raw in (True, False)}
_ALIASES_OF = (
    select(aliases_table.c.version_id, aliases_table.c.alias)
    .where(aliases_table.c.version_id.in_(bindparam("ids", expanding=True)))
    .order_by(aliases_table.c.alias)
)


def _version(row: Sequence[Any], aliases: Iterable[str]) -> ModelVersion:
    # Positional access: the column order of ``_doc_statement``.
    (_id, name, version, stage, uri, sha256, size, fmt) = row[:8]
    (signature, metrics, params, tags, lineage, environment) = row[8:14]
    (run_id, idempotency_key, description, created_by, created_at) = row[14:]
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    return ModelVersion(
        name=name,
        version=version,
        stage=Stage(stage),
        aliases=tuple(aliases),
        artifact=ArtifactRef(uri=uri, sha256=sha256, size=size, format=fmt),
        signature=_signature(signature),
        metrics=_mapping(metrics),
        params=_mapping(params),
        tags=_mapping(tags),
        lineage=_lineage(lineage),
        environment=_environment(environment),
        run_id=run_id,
        idempotency_key=idempotency_key,
        description=description,
        created_by=created_by,
        created_at=created_at,
    )


def _mapping(text: str | None) -> dict[str, Any]:
    value = from_json(text) if text else None
    return value if isinstance(value, dict) else {}


@lru_cache(maxsize=4096)
def _signature(text: str | None) -> Signature | None:
    return None if text in (None, "null") else Signature.model_validate_json(text)


@lru_cache(maxsize=4096)
def _lineage(text: str | None) -> Lineage:
    return Lineage() if text in (None, "null") else Lineage.model_validate_json(text)


@lru_cache(maxsize=1024)
def _environment(text: str | None) -> Environment:
    return Environment() if text in (None, "null") else Environment.model_validate_json(text)


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
