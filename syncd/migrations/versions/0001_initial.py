"""Initial schema: inbox, snapshots, cursors, events, actions, fired triggers, state, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("connector", "delivery_id", name="uq_inbox_delivery"),
    )
    op.create_index("ix_inbox_due", "inbox", ["status", "next_attempt_at"])
    op.create_table(
        "snapshots",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("object_type", sa.String(64), primary_key=True),
        sa.Column("object_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.BigInteger),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("entered", sa.JSON, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("fence", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("field", sa.String(200)),
        sa.Column("old", sa.JSON),
        sa.Column("new", sa.JSON),
        sa.Column("version", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_events_object", "events", ["source", "object_type", "object_id"])
    op.create_index("ix_events_created", "events", ["created_at"])
    op.create_table(
        "actions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("source", sa.String(64)),
        sa.Column("object_type", sa.String(64)),
        sa.Column("object_id", sa.String(200)),
        sa.Column("event_id", sa.BigInteger),
        sa.Column("guarantee", sa.String(16), nullable=False, server_default="at_least_once"),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("external_id", sa.String(300)),
        sa.Column("external_url", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_actions_due", "actions", ["status", "next_attempt_at"])
    op.create_index("ix_actions_updated", "actions", ["updated_at"])
    op.create_table(
        "fired_triggers",
        sa.Column("trigger_key", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "state",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.JSON),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("rule_id", sa.String(200), primary_key=True),
        sa.Column("last_sent_at", sa.BigInteger, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for name in (
        "alerts",
        "state",
        "fired_triggers",
        "actions",
        "events",
        "cursors",
        "snapshots",
        "inbox",
    ):
        op.drop_table(name)
