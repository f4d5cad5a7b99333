"""Data subjects: subject manifests of dataset versions, the interval index of
subjects over them, erasure requests and the versions they flag.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = "state = 'retrain required'"


def upgrade() -> None:
    op.create_table(
        "subject_dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("manifests", sa.Integer(), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "subject_manifest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=256), nullable=False),
        sa.Column("subjects", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["subject_dataset.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_subject_manifest_version"),
        sa.UniqueConstraint("dataset_id", "ordinal", name="uq_subject_manifest_ordinal"),
    )
    op.create_table(
        "subject_span",
        sa.Column("subject", sa.LargeBinary(length=16), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("first_ordinal", sa.Integer(), nullable=False),
        sa.Column("last_ordinal", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["subject_dataset.id"]),
        sa.PrimaryKeyConstraint("subject", "dataset_id", "first_ordinal"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "erasure_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("subject_prefix", sa.LargeBinary(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "erasure_item",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("closed_by_version", sa.Integer(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["erasure_request.id"]),
        sa.PrimaryKeyConstraint("request_id", "model_id", "version"),
    )
    with op.batch_alter_table("erasure_item", schema=None) as batch_op:
        batch_op.create_index(
            "ix_erasure_item_open",
            ["model_id"],
            unique=False,
            sqlite_where=sa.text(_OPEN),
            postgresql_where=sa.text(_OPEN),
        )
        batch_op.create_index("ix_erasure_item_version", ["model_id", "version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("erasure_item", schema=None) as batch_op:
        batch_op.drop_index("ix_erasure_item_version")
        batch_op.drop_index("ix_erasure_item_open")
    op.drop_table("erasure_item")
    op.drop_table("erasure_request")
    op.drop_table("subject_span")
    op.drop_table("subject_manifest")
    op.drop_table("subject_dataset")
