"""The release contract's records: versioned policies, app releases and their bindings.

Declared on the same metadata as ``schema.py``; created by migration 0004.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, UniqueConstraint

from registry.store.sql.schema import JSONType, UTCDateTime, metadata

# Append-only: ``policy set`` adds version N+1; the newest version is in force.
policies_table = Table(
    "release_policy",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_model.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSONType, nullable=False),
    Column("reason", String, nullable=False),
    Column("actor", String, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_policy_version"),
)

# One release of an application and the feature schema its code sends (immutable).
app_releases_table = Table(
    "app_release",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(200), nullable=False),
    Column("release", String(64), nullable=False),
    Column("schema_doc", JSONType, nullable=False),
    Column("description", String),
    Column("created_by", String, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("app", "release", name="uq_app_release"),
)

# Which version of a model an app release uses: pinned, or following a pointer.
bindings_table = Table(
    "app_binding",
    metadata,
    Column("release_id", Integer, ForeignKey("app_release.id"), primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_model.id"), primary_key=True, index=True),
    Column("version_id", Integer, ForeignKey("model_version.id")),
    Column("follow", String(64)),  # "production" or an alias
    Column("bound_by", String, nullable=False),
    Column("bound_at", UTCDateTime(), nullable=False),
)
