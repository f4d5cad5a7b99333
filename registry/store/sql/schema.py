"""The registry's tables, declared once as SQLAlchemy Core ``Table`` objects.

Alembic migrations (``registry/store/migrations``) create and upgrade these;
a test checks that the migrated schema and these declarations agree. The store
reads and writes through Core only, so the tables are declared without ORM classes:
thirty mapped SQLModel classes (each a pydantic model and an ORM mapper nobody
instantiated) were a third of every ``modelreg`` command's start-up (#13).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


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


models_table = Table(
    "registered_model",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", String),
    Column("generation", Integer, nullable=False, default=0),
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

model_tags_table = Table(
    "model_tag",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_model.id"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String, nullable=False),
)

versions_table = Table(
    "model_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_model.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String, nullable=False, default="None"),
    Column("artifact_uri", String, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("format", String, nullable=False),
    Column("signature", JSONType),
    # Metrics and tags are stored twice: here as the version's document (read back
    # exactly as written), and as version_attribute rows that search indexes.
    Column("metrics", JSONType),
    Column("params", JSONType),
    Column("tags", JSONType),
    Column("lineage", JSONType),
    Column("environment", JSONType),
    Column("run_id", String),
    Column("idempotency_key", String),
    Column("description", String),
    Column("feature_pipeline", String, index=True),
    Column("code_commit", String, index=True),
    # Derived from the event log in the same transaction, so a rollback finds its
    # target with one indexed read: the model generation at which this version last
    # entered Production, and whether a rollback ever moved Production away from it.
    Column("served_generation", BigInteger),
    Column("rolled_back", Boolean, nullable=False, default=False, server_default=sql_text("false")),
    Column("created_by", String, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
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

# Metrics, params and tags of a version, one row each, so search can index them.
# Clustered on the primary key (SQLite WITHOUT ROWID), and each search index only
# holds the rows that can match it: a registration dirties fewer pages. The value
# indexes end in version_id (implicit on SQLite, which appends the key; explicit
# for PostgreSQL), so an equality lists its versions newest first without a sort.
attributes_table = Table(
    "version_attribute",
    metadata,
    Column("version_id", Integer, ForeignKey("model_version.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # metric | param | tag
    Column("key", String(128), primary_key=True),
    Column("text", String),
    Column("num", Float),
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
    sqlite_with_rowid=False,
)

aliases_table = Table(
    "model_alias",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_model.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_version.id"), nullable=False, index=True),
)

# One dataset version a model version was trained on (for lineage queries).
datasets_table = Table(
    "version_dataset",
    metadata,
    Column("version_id", Integer, ForeignKey("model_version.id"), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("version", String(256), primary_key=True),
    Column("fingerprint", String),
    Column("rows", BigInteger),
    Column("date_start", Date),
    Column("date_end", Date),
    Index("ix_dataset_name_version", "name", "version"),
)

# Append-only: rows are inserted, never updated or deleted.
events_table = Table(
    "event",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("model_id", Integer, ForeignKey("registered_model.id"), nullable=False),
    Column("model_name", String, nullable=False),
    Column("version", Integer),
    Column("kind", String(32), nullable=False),
    Column("subject", String),
    Column("from_value", String),
    Column("to_value", String),
    Column("actor", String, nullable=False),
    Column("reason", String),
    Column("generation", Integer, nullable=False),
    # Typed in ``registry.models.EventDetails`` (forced, refusal reasons, the flow run
    # that made the change, invalidate); NULL for plain events and those before 0004.
    Column("details", JSONType),
    Index("ix_event_model_seq", "model_id", "seq"),
    # Pages by the name an event was written under, and by kind (migration 0008).
    Index("ix_event_name_seq", "model_name", "seq"),
    Index("ix_event_name_kind_seq", "model_name", "kind", "seq"),
    Index("ix_event_kind_seq", "kind", "seq"),
    # A model's pages by kind, across its renames (migration 0009).
    Index("ix_event_model_kind_seq", "model_id", "kind", "seq"),
)

# One row. Allocating ``seq`` by updating it holds a row lock until commit, so on
# PostgreSQL sequence order is commit order and a feed reader never skips an event
# that commits late (a plain sequence does not guarantee that).
event_counter_table = Table(
    "event_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
)
