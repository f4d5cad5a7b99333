"""PostgreSQL: joint statistics on attribute kind, key and text for the search planner.

Without them the planner multiplies the selectivities of ``kind``, ``key`` and
``text`` as if independent, estimates a tag equality at ~1% of its real rows, and
sorts every match instead of reading the (kind, key, text, version_id) index
newest first (12.8 ms against 0.8 ms for a tag search at 30k versions, once
ANALYZE has run). SQLite has nothing to create.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS st_attribute_kind_key_text (mcv, dependencies) "
            "ON kind, key, text FROM version_attribute"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_attribute_kind_key_text")
