"""The release contract's records: versioned policies, app releases and their bindings.

Declared on the same metadata as ``schema.py``; created by migration 0004.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.store.sql.schema import JSONType, UTCDateTime


class PolicyRow(SQLModel, table=True):
    """Append-only: ``policy set`` adds version N+1; the newest version is in force."""

    __tablename__ = "release_policy"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_policy_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id")
    version: int
    document: dict[str, Any] = Field(sa_type=JSONType)
    reason: str
    actor: str
    created_at: datetime = Field(sa_type=UTCDateTime)


class AppReleaseRow(SQLModel, table=True):
    """One release of an application and the feature schema its code sends (immutable)."""

    __tablename__ = "app_release"
    __table_args__ = (UniqueConstraint("app", "release", name="uq_app_release"),)

    id: int | None = Field(default=None, primary_key=True)
    app: str = Field(max_length=200)
    release: str = Field(max_length=64)
    schema_doc: dict[str, Any] = Field(sa_type=JSONType)
    description: str | None = None
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)


class BindingRow(SQLModel, table=True):
    """Which version of a model an app release uses: pinned, or following a pointer."""

    __tablename__ = "app_binding"

    release_id: int = Field(foreign_key="app_release.id", primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", primary_key=True, index=True)
    version_id: int | None = Field(default=None, foreign_key="model_version.id")
    follow: str | None = Field(default=None, max_length=64)  # "production" or an alias
    bound_by: str
    bound_at: datetime = Field(sa_type=UTCDateTime)


policies_table = PolicyRow.__table__  # type: ignore[attr-defined]
app_releases_table = AppReleaseRow.__table__  # type: ignore[attr-defined]
bindings_table = BindingRow.__table__  # type: ignore[attr-defined]
