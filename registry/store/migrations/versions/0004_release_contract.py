"""The release contract: versioned release policies, app releases and bindings, and
typed details on events (forced changes, refusal reasons, the run that made a change).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
    op.create_table(
        "release_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "version", name="uq_policy_version"),
    )
    op.create_table(
        "app_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=200), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=False),
        sa.Column("schema_doc", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app", "release", name="uq_app_release"),
    )
    op.create_table(
        "app_binding",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("follow", sa.String(length=64), nullable=True),
        sa.Column("bound_by", sa.String(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.ForeignKeyConstraint(["release_id"], ["app_release.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("release_id", "model_id"),
    )
    with op.batch_alter_table("app_binding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_binding_model_id"), ["model_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_binding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_binding_model_id"))
    op.drop_table("app_binding")
    op.drop_table("app_release")
    op.drop_table("release_policy")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("details")
