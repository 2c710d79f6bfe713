"""`syncd actions retry`: a dead action runs again; one whose render failed is planned again.

An action whose condition or template failed was stored dead with empty params and, in the
`state` table (scope `replan`), the situation it was planned from (the event, the object's
snapshot, the rule id). Retrying it plans that situation again with the rules in force
today; the action keeps its key, so it is performed once however often it is retried.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from syncd.ingest import REPLAN_SCOPE
from syncd.mapping.planner import Situation, decide
from syncd.mapping.rules import RuleSet
from syncd.store import state
from syncd.store.actions import ActionRow, update_action
from syncd.store.db import Store

RETRYABLE = ("dead", "cancelled")


def retry_action(
    store: Store, conn: Connection, row: ActionRow, rules: RuleSet, now_ms: int
) -> str:
    """Make `row` pending again (re-planned when it kept a situation); the result in words."""
    label = f"action {row.id} ({row.rule_id})"
    if row.status not in RETRYABLE:
        return f"{label}: is {row.status}; only dead or cancelled actions are retried"
    kept = state.get_value(store, REPLAN_SCOPE, row.key, conn)
    values: dict[str, Any] = {
        "status": "pending",
        "updated_at": now_ms,
        "next_attempt_at": 0,
        "lease_until": None,
    }
    how = "pending again"
    if kept is not None:
        rule = rules.by_id.get(row.rule_id)
        if rule is None:
            return f"{label}: not retried: rule {row.rule_id} is no longer in the mappings"
        decision = decide(rule, Situation.from_json(kept["situation"]))
        planned = next((a for a in decision.actions if a.key == row.key), None)
        if planned is None:
            return (
                f"{label}: not retried: today's rule does not plan it "
                f"({decision.outcome}: {decision.reason})"
            )
        if planned.error:
            update_action(conn, row.id, last_error=planned.error, updated_at=now_ms)
            return f"{label}: still fails, left dead: {planned.error}"
        values.update(params=planned.params, last_error=None, attempts=0)
        state.delete_value(conn, REPLAN_SCOPE, row.key)
        how = "re-planned with today's rules, pending"
    update_action(conn, row.id, **values)
    return f"{label}: {how}"


CANCELLABLE = ("pending", "dead")


def cancel_action(conn: Connection, row: ActionRow, now_ms: int) -> str:
    """`syncd actions cancel` and the console's Cancel button: a pending or dead action will
    not run; the result in words."""
    label = f"action {row.id} ({row.rule_id})"
    if row.status not in CANCELLABLE:
        return f"{label}: is {row.status}; only pending or dead actions are cancelled"
    update_action(conn, row.id, status="cancelled", updated_at=now_ms)
    return f"{label}: cancelled"
