"""Fleet heartbeats: one row per running resolver (what it serves, how far behind).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resolver_heartbeat",
        sa.Column("resolver_id", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("ref", sa.String(length=256), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resolver_id"),
    )
    with op.batch_alter_table("resolver_heartbeat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resolver_heartbeat_model"), ["model"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resolver_heartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resolver_heartbeat_model"))
    op.drop_table("resolver_heartbeat")
