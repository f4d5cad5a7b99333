"""Release records: one replica row per (version, region), and an append-only check log.

Declared on the same metadata as ``schema.py``; created by migration 0002.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from registry.store.sql.schema import JSONType, UTCDateTime


class ReplicaRow(SQLModel, table=True):
    """Where one version's bytes are in one region; rewritten in place as its state moves."""

    __tablename__ = "version_replica"

    version_id: int = Field(foreign_key="model_version.id", primary_key=True)
    region: str = Field(max_length=64, primary_key=True)
    state: str = Field(max_length=16)  # pending | verified | failed
    uri: str | None = None
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = Field(default=None, sa_type=BigInteger)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CheckRow(SQLModel, table=True):
    """Append-only: a check is recorded once and never changed; ``id`` is its order."""

    __tablename__ = "version_check"
    __table_args__ = (Index("ix_check_version_kind", "version_id", "kind", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id")
    kind: str = Field(max_length=32)
    region: str | None = Field(default=None, max_length=64)
    passed: bool
    evidence: dict[str, Any] = Field(sa_type=JSONType)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str


replicas_table = ReplicaRow.__table__  # type: ignore[attr-defined]
checks_table = CheckRow.__table__  # type: ignore[attr-defined]
