"""Initial schema: models, versions, attributes, aliases, datasets, event log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table("event_counter", sa.column("id"), sa.column("seq")), [{"id": 1, "seq": 0}]
    )
    op.create_table(
        "registered_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("from_value", sa.String(), nullable=True),
        sa.Column("to_value", sa.String(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_model_seq", ["model_id", "seq"], unique=False)

    op.create_table(
        "model_tag",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
        ),
        sa.PrimaryKeyConstraint("model_id", "key"),
    )
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("artifact_uri", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column(
            "signature",
            sa.JSON(),
            nullable=True,
        ),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column(
            "params",
            sa.JSON(),
            nullable=True,
        ),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column(
            "lineage",
            sa.JSON(),
            nullable=True,
        ),
        sa.Column(
            "environment",
            sa.JSON(),
            nullable=True,
        ),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("feature_pipeline", sa.String(), nullable=True),
        sa.Column("code_commit", sa.String(), nullable=True),
        sa.Column("served_generation", sa.BigInteger(), nullable=True),
        sa.Column("rolled_back", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "version", name="uq_version_number"),
    )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_version_code_commit"), ["code_commit"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_model_version_feature_pipeline"), ["feature_pipeline"], unique=False
        )
        batch_op.create_index("ix_version_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_version_model_stage", ["model_id", "stage", "version"], unique=False)
        batch_op.create_index(
            "uq_version_idempotency",
            ["model_id", "idempotency_key"],
            unique=True,
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_version_served",
            ["model_id", "served_generation"],
            unique=False,
            sqlite_where=sa.text("served_generation IS NOT NULL AND rolled_back = 0"),
            postgresql_where=sa.text("served_generation IS NOT NULL AND NOT rolled_back"),
        )

    op.create_table(
        "model_alias",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version.id"],
        ),
        sa.PrimaryKeyConstraint("model_id", "alias"),
    )
    with op.batch_alter_table("model_alias", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_alias_version_id"), ["version_id"], unique=False)

    op.create_table(
        "version_attribute",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("num", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version.id"],
        ),
        sa.PrimaryKeyConstraint("version_id", "kind", "key"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("version_attribute", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attribute_num",
            ["kind", "key", "num", "version_id"],
            unique=False,
            sqlite_where=sa.text("num IS NOT NULL"),
            postgresql_where=sa.text("num IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_attribute_text",
            ["kind", "key", "text", "version_id"],
            unique=False,
            sqlite_where=sa.text("text IS NOT NULL"),
            postgresql_where=sa.text("text IS NOT NULL"),
        )

    op.create_table(
        "version_dataset",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("date_start", sa.Date(), nullable=True),
        sa.Column("date_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version.id"],
        ),
        sa.PrimaryKeyConstraint("version_id", "name", "version"),
    )
    with op.batch_alter_table("version_dataset", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_name_version", ["name", "version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("version_dataset", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_name_version")

    op.drop_table("version_dataset")
    with op.batch_alter_table("version_attribute", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_attribute_text",
            sqlite_where=sa.text("text IS NOT NULL"),
            postgresql_where=sa.text("text IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_attribute_num",
            sqlite_where=sa.text("num IS NOT NULL"),
            postgresql_where=sa.text("num IS NOT NULL"),
        )

    op.drop_table("version_attribute")
    with op.batch_alter_table("model_alias", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_alias_version_id"))

    op.drop_table("model_alias")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index("ix_version_served")
        batch_op.drop_index("uq_version_idempotency")
        batch_op.drop_index("ix_version_model_stage")
        batch_op.drop_index("ix_version_created_at")
        batch_op.drop_index(batch_op.f("ix_model_version_feature_pipeline"))
        batch_op.drop_index(batch_op.f("ix_model_version_code_commit"))

    op.drop_table("model_version")
    op.drop_table("model_tag")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_model_seq")

    op.drop_table("event")
    op.drop_table("registered_model")
    op.drop_table("event_counter")
