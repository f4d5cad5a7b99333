"""Data subjects: subject manifests of dataset versions, the subject index, erasures.

Declared on the same metadata as ``schema.py``; created by migration 0007.

The index is by intervals, not (subject, dataset version) pairs, which would be a
billion rows at 10,000 versions of 100,000 subjects. The versions of one dataset get
an ordinal in the order their manifests are recorded; a ``subject_span`` row says
the subject is in every version of that dataset from ``first_ordinal`` to
``last_ordinal`` (NULL: still in the newest). Consecutive snapshots overlap heavily,
so a subject costs a row per stretch of versions it stays in. The newest manifest's
keys are kept as one sorted blob on the dataset's row (``head``): recording the next
one is a blob read and a merge, not a select of 100,000 rows. Keys in the index are
the first 16 bytes of the HMAC (collisions are out of reach at 2^-64 for 2^32
subjects); the full keys are in the manifest artifact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

from registry.store.sql.schema import UTCDateTime

KEY_BYTES = 16  # of the 32-byte HMAC, in the index


class SubjectDatasetRow(SQLModel, table=True):
    """One dataset (by name) that has subject manifests, and its newest set of keys."""

    __tablename__ = "subject_dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=256, unique=True)
    manifests: int = 0  # the newest manifest's ordinal
    head: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sorted 16-byte keys


class SubjectManifestRow(SQLModel, table=True):
    """One dataset version's manifest: the artifact listing its subjects' keys."""

    __tablename__ = "subject_manifest"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_subject_manifest_version"),
        UniqueConstraint("dataset_id", "ordinal", name="uq_subject_manifest_ordinal"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="subject_dataset.id")
    version: str = Field(max_length=256)
    ordinal: int
    uri: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    format: str = Field(max_length=256)
    subjects: int
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=256)


class SubjectSpanRow(SQLModel, table=True):
    """The subject is in versions ``first_ordinal..last_ordinal`` of the dataset."""

    __tablename__ = "subject_span"
    __table_args__ = ({"sqlite_with_rowid": False},)

    subject: bytes = Field(sa_column=Column(LargeBinary(KEY_BYTES), primary_key=True))
    dataset_id: int = Field(foreign_key="subject_dataset.id", primary_key=True)
    first_ordinal: int = Field(primary_key=True)
    last_ordinal: int | None = None


class ErasureRequestRow(SQLModel, table=True):
    __tablename__ = "erasure_request"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=64)  # the full key
    subject_prefix: bytes = Field(sa_column=Column(LargeBinary(KEY_BYTES), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=256)
    requested_at: datetime = Field(sa_type=UTCDateTime)


class ErasureItemRow(SQLModel, table=True):
    """One version a request concerns. By model id and number, not version row: the
    obligation outlives a deleted version, and follows a renamed model."""

    __tablename__ = "erasure_item"
    __table_args__ = (
        # What a registration asks: does this model have an open item? Only open rows.
        Index(
            "ix_erasure_item_open",
            "model_id",
            sqlite_where=sql_text("state = 'retrain required'"),
            postgresql_where=sql_text("state = 'retrain required'"),
        ),
        Index("ix_erasure_item_version", "model_id", "version"),
    )

    request_id: int = Field(foreign_key="erasure_request.id", primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", primary_key=True)
    version: int = Field(primary_key=True)
    state: str = Field(max_length=32)  # retrain required | retrained | justified
    closed_by_version: int | None = None
    justification: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=256)


subject_datasets_table = SubjectDatasetRow.__table__  # type: ignore[attr-defined]
subject_manifests_table = SubjectManifestRow.__table__  # type: ignore[attr-defined]
subject_spans_table = SubjectSpanRow.__table__  # type: ignore[attr-defined]
erasure_requests_table = ErasureRequestRow.__table__  # type: ignore[attr-defined]
erasure_items_table = ErasureItemRow.__table__  # type: ignore[attr-defined]
