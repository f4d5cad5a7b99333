"""The registry's tables, declared once with SQLModel.

Alembic migrations (``registry/store/migrations``) create and upgrade these;
a test checks that the migrated schema and these declarations agree.
Hot read and write paths use the Core ``Table`` objects (``Row.__table__``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry store")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Plain JSON on both backends: JSONB normalises numbers (1e16 would read back as an int),
# and registration metadata must read back exactly as written.
JSONType = JSON()


def _json() -> Any:
    return Field(default=None, sa_type=JSONType)


def _utc(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class RegisteredModelRow(SQLModel, table=True):
    __tablename__ = "registered_model"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    description: str | None = None
    generation: int = 0
    last_version: int = 0
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class ModelTagRow(SQLModel, table=True):
    __tablename__ = "model_tag"

    model_id: int = Field(foreign_key="registered_model.id", primary_key=True)
    key: str = Field(max_length=128, primary_key=True)
    value: str


class VersionRow(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_version_number"),
        # Partial: most registrations carry no key and then touch no page of it.
        Index(
            "uq_version_idempotency",
            "model_id",
            "idempotency_key",
            unique=True,
            sqlite_where=sql_text("idempotency_key IS NOT NULL"),
            postgresql_where=sql_text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_version_model_stage", "model_id", "stage", "version"),
        Index("ix_version_created_at", "created_at"),
        # Rollback candidates: versions that served and were not rolled away from.
        Index(
            "ix_version_served",
            "model_id",
            "served_generation",
            sqlite_where=sql_text("served_generation IS NOT NULL AND rolled_back = 0"),
            postgresql_where=sql_text("served_generation IS NOT NULL AND NOT rolled_back"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id")
    version: int
    stage: str = "None"
    artifact_uri: str
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    format: str
    signature: dict[str, Any] | None = _json()
    # Metrics and tags are stored twice: here as the version's document (read back
    # exactly as written), and as version_attribute rows that search indexes.
    metrics: dict[str, Any] | None = _json()
    params: dict[str, Any] | None = _json()
    tags: dict[str, Any] | None = _json()
    lineage: dict[str, Any] | None = _json()
    environment: dict[str, Any] | None = _json()
    run_id: str | None = None
    idempotency_key: str | None = None
    description: str | None = None
    feature_pipeline: str | None = Field(default=None, index=True)
    code_commit: str | None = Field(default=None, index=True)
    # Derived from the event log in the same transaction, so a rollback finds its
    # target with one indexed read: the model generation at which this version last
    # entered Production, and whether a rollback ever moved Production away from it.
    served_generation: int | None = Field(default=None, sa_type=BigInteger)
    rolled_back: bool = Field(default=False, sa_column_kwargs={"server_default": sql_text("false")})
    created_by: str
    created_at: datetime = _utc()


class VersionAttributeRow(SQLModel, table=True):
    """Metrics, params and tags of a version, one row each, so search can index them."""

    __tablename__ = "version_attribute"
    # Clustered on the primary key (SQLite WITHOUT ROWID), and each search index only
    # holds the rows that can match it: a registration dirties fewer pages. The value
    # indexes end in version_id (implicit on SQLite, which appends the key; explicit
    # for PostgreSQL), so an equality lists its versions newest first without a sort.
    __table_args__ = (
        Index(
            "ix_attribute_num",
            "kind",
            "key",
            "num",
            "version_id",
            sqlite_where=sql_text("num IS NOT NULL"),
            postgresql_where=sql_text("num IS NOT NULL"),
        ),
        Index(
            "ix_attribute_text",
            "kind",
            "key",
            "text",
            "version_id",
            sqlite_where=sql_text("text IS NOT NULL"),
            postgresql_where=sql_text("text IS NOT NULL"),
        ),
        {"sqlite_with_rowid": False},
    )

    version_id: int = Field(foreign_key="model_version.id", primary_key=True)
    kind: str = Field(max_length=8, primary_key=True)  # metric | param | tag
    key: str = Field(max_length=128, primary_key=True)
    text: str | None = None
    num: float | None = None


class AliasRow(SQLModel, table=True):
    __tablename__ = "model_alias"

    model_id: int = Field(foreign_key="registered_model.id", primary_key=True)
    alias: str = Field(max_length=64, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id", index=True)


class DatasetUseRow(SQLModel, table=True):
    """One dataset version a model version was trained on (for lineage queries)."""

    __tablename__ = "version_dataset"
    __table_args__ = (Index("ix_dataset_name_version", "name", "version"),)

    version_id: int = Field(foreign_key="model_version.id", primary_key=True)
    name: str = Field(max_length=256, primary_key=True)
    version: str = Field(max_length=256, primary_key=True)
    fingerprint: str | None = None
    rows: int | None = Field(default=None, sa_type=BigInteger)
    date_start: date | None = None
    date_end: date | None = None


class EventRow(SQLModel, table=True):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_model_seq", "model_id", "seq"),
        # Pages by the name an event was written under, and by kind (migration 0008).
        Index("ix_event_name_seq", "model_name", "seq"),
        Index("ix_event_name_kind_seq", "model_name", "kind", "seq"),
        Index("ix_event_kind_seq", "kind", "seq"),
        # A model's pages by kind, across its renames (migration 0009).
        Index("ix_event_model_kind_seq", "model_id", "kind", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = _utc()
    model_id: int = Field(foreign_key="registered_model.id")
    model_name: str
    version: int | None = None
    kind: str = Field(max_length=32)
    subject: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    actor: str
    reason: str | None = None
    generation: int
    # Typed in ``registry.models.EventDetails`` (forced, refusal reasons, the flow run
    # that made the change, invalidate); NULL for plain events and those before 0004.
    details: dict[str, Any] | None = _json()


class EventCounterRow(SQLModel, table=True):
    """One row. Allocating ``seq`` by updating it holds a row lock until commit, so
    on PostgreSQL sequence order is commit order and a feed reader never skips an
    event that commits late (a plain sequence does not guarantee that)."""

    __tablename__ = "event_counter"

    id: int = Field(primary_key=True)
    seq: int = Field(sa_type=BigInteger)


models_table = RegisteredModelRow.__table__  # type: ignore[attr-defined]
model_tags_table = ModelTagRow.__table__  # type: ignore[attr-defined]
versions_table = VersionRow.__table__  # type: ignore[attr-defined]
attributes_table = VersionAttributeRow.__table__  # type: ignore[attr-defined]
aliases_table = AliasRow.__table__  # type: ignore[attr-defined]
datasets_table = DatasetUseRow.__table__  # type: ignore[attr-defined]
events_table = EventRow.__table__  # type: ignore[attr-defined]
event_counter_table = EventCounterRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
