"""The console: decision traces per event, attempts per action, indexes for its pages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_traces",
        sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("decisions", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_event_traces_created", "event_traces", ["created_at"])
    op.create_table(
        "action_attempts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_action_attempts_action", "action_attempts", ["action_id"])
    op.create_index("ix_action_attempts_finished", "action_attempts", ["finished_at"])
    op.create_index("ix_actions_event", "actions", ["event_id"])
    op.create_index("ix_actions_rule", "actions", ["rule_id", "status", "event_id"])
    op.create_index("ix_actions_status_event", "actions", ["status", "event_id"])
    op.create_index("ix_actions_created", "actions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_actions_created", "actions")
    op.drop_index("ix_actions_status_event", "actions")
    op.drop_index("ix_actions_rule", "actions")
    op.drop_index("ix_actions_event", "actions")
    op.drop_index("ix_action_attempts_finished", "action_attempts")
    op.drop_index("ix_action_attempts_action", "action_attempts")
    op.drop_table("action_attempts")
    op.drop_index("ix_event_traces_created", "event_traces")
    op.drop_table("event_traces")
