"""Pages of one model's events by kind, whatever names the model had (#13).

``events(model=M)`` follows the model itself (its id) when M names a model now, so a
renamed model's history keeps the events written under its earlier names; 0008's
(model_name, kind, seq) serves only a name no model holds any more (a deleted or
renamed-away one).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_model_kind_seq", ["model_id", "kind", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_model_kind_seq")
