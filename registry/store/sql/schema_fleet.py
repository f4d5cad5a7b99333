"""Fleet heartbeats: one row per running resolver, rewritten in place at each beat.

Declared on the same metadata as ``schema.py``; created by migration 0005. No
foreign key to ``registered_model``: a beat is one upsert and nothing else, and a
resolver may report a model name the registry no longer resolves.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table

from registry.store.sql.schema import UTCDateTime, metadata

heartbeats_table = Table(
    "resolver_heartbeat",
    metadata,
    Column("resolver_id", String(256), primary_key=True),
    Column("model", String(200), nullable=False, index=True),
    Column("ref", String(256), nullable=False),
    Column("region", String(64), nullable=False),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", Integer),
    Column("generation", Integer),
    Column("seq", BigInteger, nullable=False),  # the newest event the resolver has seen
    Column("degraded", Boolean, nullable=False),
    Column("reason", String),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
)
