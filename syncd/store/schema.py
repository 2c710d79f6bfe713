"""The tables. Times are integer milliseconds since the epoch (UTC) in every column, which
compares and indexes the same way on SQLite and PostgreSQL.

Migrations in `syncd/migrations/versions/` create these; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
# 64-bit ids on PostgreSQL; INTEGER on SQLite, where only that type autoincrements.
ID = BigInteger().with_variant(Integer, "sqlite")

# Webhook deliveries, stored before the 2xx. Processing turns them into ingests.
inbox = Table(
    "inbox",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("connector", String(64), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False, server_default="0"),
    Column("last_error", Text),
    UniqueConstraint("connector", "delivery_id", name="uq_inbox_delivery"),
)
Index("ix_inbox_due", inbox.c.status, inbox.c.next_attempt_at)

# Last known state of every object; the diff against it yields events.
snapshots = Table(
    "snapshots",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("object_type", String(64), primary_key=True),
    Column("object_id", String(200), primary_key=True),
    Column("version", BigInteger),
    Column("fields", JSON, nullable=False),
    Column("context", JSON, nullable=False),
    # field -> ms when it took its current value ("7 days after it entered Qualified")
    Column("entered", JSON, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# Poll positions; moved only in the transaction that saves what was read.
cursors = Table(
    "cursors",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("value", Text),
    Column("updated_at", BigInteger, nullable=False),
    Column("fence", BigInteger, nullable=False, server_default="0"),
)

# Audit history of changes (pruned after the retention period).
events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("event_key", String(64), nullable=False, unique=True),
    Column("source", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("field", String(200)),
    Column("old", JSON),
    Column("new", JSON),
    Column("version", BigInteger),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_events_object", events.c.source, events.c.object_type, events.c.object_id)
Index("ix_events_created", events.c.created_at)

# Planned actions: the outbox. The unique key is what makes planning idempotent.
actions = Table(
    "actions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("rule_id", String(200), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("source", String(64)),
    Column("object_type", String(64)),
    Column("object_id", String(200)),
    Column("event_id", BigInteger),
    Column("guarantee", String(16), nullable=False, server_default="at_least_once"),
    # pending -> in_flight -> done | dead | cancelled
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_until", BigInteger),
    Column("last_error", Text),
    Column("external_id", String(300)),
    Column("external_url", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_actions_due", actions.c.status, actions.c.next_attempt_at)
Index("ix_actions_updated", actions.c.updated_at)

# Schedule instants already handled (cron rules; date rules use their action keys).
fired_triggers = Table(
    "fired_triggers",
    metadata,
    Column("trigger_key", String(64), primary_key=True),
    Column("rule_id", String(200), nullable=False),
    Column("fired_at", BigInteger, nullable=False),
)

# Small key/value state that connectors need kept durably (Airtable webhook secrets and
# payload cursors, the scheduler's last tick). Values may be secret: see kv_secret.
state = Table(
    "state",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", JSON),
    Column("updated_at", BigInteger, nullable=False),
)

# Alerts already mailed, to group repeated failures (one mail per rule per period).
alerts = Table(
    "alerts",
    metadata,
    Column("rule_id", String(200), primary_key=True),
    Column("last_sent_at", BigInteger, nullable=False),
    Column("suppressed", Integer, nullable=False, server_default="0"),
)

ACTION_STATUSES = ("pending", "in_flight", "done", "dead", "cancelled")

# Every running daemon, with its last heartbeat (`syncd status` lists them).
replicas = Table(
    "replicas",
    metadata,
    Column("replica_id", String(100), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
)

# One row per singleton job (a poller, the scheduler): its current holder and fencing token.
# The fence grows with every change of holder; writes made under a leadership check it, so a
# paused former holder cannot move a cursor back or fire a trigger twice.
leaderships = Table(
    "leaderships",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("fence", BigInteger, nullable=False),
    Column("holder", String(100), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
)

# Why each rule did or did not act on an event, as the planner decided at ingest time (the
# console's "why not fired"); one row per event, pruned with the events.
event_traces = Table(
    "event_traces",
    metadata,
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    # [{"rule": id, "outcome": "fired" | "condition false" | ..., "reason": text}, ...]
    Column("decisions", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_event_traces_created", event_traces.c.created_at)
# The console's activity page filters actions by rule and joins them to their events.
Index("ix_actions_event", actions.c.event_id)
Index("ix_actions_rule", actions.c.rule_id, actions.c.status, actions.c.event_id)
Index("ix_actions_status_event", actions.c.status, actions.c.event_id)
Index("ix_actions_created", actions.c.created_at)
# Which done action created an object (syncd.store.origins, at every ingest).
Index("ix_actions_external", actions.c.connector, actions.c.external_id)

# Each attempt of an action as it ended (the console's action page): pruned with the history.
action_attempts = Table(
    "action_attempts",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("action_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # done | pending (to retry) | dead
    Column("error", Text),
)
Index("ix_action_attempts_action", action_attempts.c.action_id)
Index("ix_action_attempts_finished", action_attempts.c.finished_at)
