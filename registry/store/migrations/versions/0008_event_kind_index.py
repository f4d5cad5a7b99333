"""Indexes for pages of the event log by model name and kind (#13): a model's newest
pointer changes among 100,000 registrations read a few index entries, not the log.

``events(model=M)`` filters on the name the event was written under (``model_name``),
which the model-id index does not serve; ``kinds`` reads one kind at a time, in order.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_event_name_seq": ["model_name", "seq"],
    "ix_event_name_kind_seq": ["model_name", "kind", "seq"],
    "ix_event_kind_seq": ["kind", "seq"],
}


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
