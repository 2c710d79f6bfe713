"""Index actions by what they created, for the origin look-up at every ingest.

`syncd.store.origins.created_by` asks, for each object ingested, whether a done action of
syncd created it (`connector`, `external_id`). Without an index that question read every
done action: the cost of an ingest grew with the history (issue 17).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_actions_external", "actions", ["connector", "external_id"])


def downgrade() -> None:
    op.drop_index("ix_actions_external", "actions")
