"""Fleet heartbeats: one row per running resolver, rewritten in place at each beat.

Declared on the same metadata as ``schema.py``; created by migration 0005. No
foreign key to ``registered_model``: a beat is one upsert and nothing else, and a
resolver may report a model name the registry no longer resolves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from registry.store.sql.schema import UTCDateTime


class ResolverHeartbeatRow(SQLModel, table=True):
    __tablename__ = "resolver_heartbeat"

    resolver_id: str = Field(max_length=256, primary_key=True)
    model: str = Field(max_length=200, index=True)
    ref: str = Field(max_length=256)
    region: str = Field(max_length=64)
    host: str = Field(max_length=256)
    pid: int
    version: int | None = None
    generation: int | None = None
    seq: int = Field(sa_type=BigInteger)  # the newest event the resolver has seen
    degraded: bool
    reason: str | None = None
    started_at: datetime = Field(sa_type=UTCDateTime)
    seen_at: datetime = Field(sa_type=UTCDateTime)


heartbeats_table = ResolverHeartbeatRow.__table__  # type: ignore[attr-defined]
