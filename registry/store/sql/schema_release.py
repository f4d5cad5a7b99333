"""Release records: one replica row per (version, region), and an append-only check log.

Declared on the same metadata as ``schema.py``; created by migration 0002.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table

from registry.store.sql.schema import JSONType, UTCDateTime, metadata

# Where one version's bytes are in one region; rewritten in place as its state moves.
replicas_table = Table(
    "version_replica",
    metadata,
    Column("version_id", Integer, ForeignKey("model_version.id"), primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # pending | verified | failed
    Column("uri", String),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("verified_at", UTCDateTime()),
    Column("error", String),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Append-only: a check is recorded once and never changed; ``id`` is its order.
checks_table = Table(
    "version_check",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_version.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("region", String(64)),
    Column("passed", Boolean, nullable=False),
    Column("evidence", JSONType, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String, nullable=False),
    Index("ix_check_version_kind", "version_id", "kind", "id"),
)
