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

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text

from registry.store.sql.schema import UTCDateTime, metadata

KEY_BYTES = 16  # of the 32-byte HMAC, in the index

# One dataset (by name) that has subject manifests, and its newest set of keys.
subject_datasets_table = Table(
    "subject_dataset",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("manifests", Integer, nullable=False, default=0),  # the newest manifest's ordinal
    Column("head", LargeBinary, nullable=False),  # sorted 16-byte keys
)

# One dataset version's manifest: the artifact listing its subjects' keys.
subject_manifests_table = Table(
    "subject_manifest",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("subject_dataset.id"), nullable=False),
    Column("version", String(256), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("uri", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("format", String(256), nullable=False),
    Column("subjects", Integer, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(256), nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_subject_manifest_version"),
    UniqueConstraint("dataset_id", "ordinal", name="uq_subject_manifest_ordinal"),
)

# The subject is in versions ``first_ordinal..last_ordinal`` of the dataset.
subject_spans_table = Table(
    "subject_span",
    metadata,
    Column("subject", LargeBinary(KEY_BYTES), primary_key=True),
    Column("dataset_id", Integer, ForeignKey("subject_dataset.id"), primary_key=True),
    Column("first_ordinal", Integer, primary_key=True),
    Column("last_ordinal", Integer),
    sqlite_with_rowid=False,
)

erasure_requests_table = Table(
    "erasure_request",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject", String(64), nullable=False),  # the full key
    Column("subject_prefix", LargeBinary(KEY_BYTES), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
)

# One version a request concerns. By model id and number, not version row: the
# obligation outlives a deleted version, and follows a renamed model.
erasure_items_table = Table(
    "erasure_item",
    metadata,
    Column("request_id", Integer, ForeignKey("erasure_request.id"), primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_model.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(32), nullable=False),  # retrain required | retrained | justified
    Column("closed_by_version", Integer),
    Column("justification", Text),
    Column("closed_at", UTCDateTime()),
    Column("closed_by", String(256)),
    # What a registration asks: does this model have an open item? Only open rows.
    Index(
        "ix_erasure_item_open",
        "model_id",
        sqlite_where=sql_text("state = 'retrain required'"),
        postgresql_where=sql_text("state = 'retrain required'"),
    ),
    Index("ix_erasure_item_version", "model_id", "version"),
)
