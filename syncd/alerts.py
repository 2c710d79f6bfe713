"""Alerts to the partnerships inbox when an action goes dead.

An alert is itself a planned action (`email.send`), stored in the same outbox: it survives
restarts and is retried until the mail server takes it. Repeated failures of one rule are
grouped: at most one alert per rule per `[alerts] period_minutes`; the ones held back are
counted and reported in the next alert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, update

from syncd.clock import to_ms
from syncd.ingest import insert_actions
from syncd.mapping.rules import PlannedAction, make_key
from syncd.model import ObjectRef
from syncd.store.schema import alerts

if TYPE_CHECKING:
    from syncd.engine import Engine

log = structlog.get_logger("syncd.alerts")
ALERT_RULE_PREFIX = "syncd.alert"


def is_alert(rule_id: str) -> bool:
    return rule_id.startswith(ALERT_RULE_PREFIX)


def alert_text(row: dict[str, Any], reason: str, held_back: int) -> tuple[str, str]:
    obj = f"{row['source']}:{row['object_type']}:{row['object_id']}" if row.get("source") else "-"
    subject = f"[syncd] rule {row['rule_id']} failed: {row['connector']}.{row['action']}"
    lines = [
        f"Rule:    {row['rule_id']}",
        f"Action:  {row['connector']}.{row['action']} (id {row['id']}, key {row['key']})",
        f"Object:  {obj}",
        f"Error:   {reason}",
        "",
        "The action is dead: syncd will not try it again by itself. After fixing the cause:",
        f"    syncd actions retry {row['id']}",
        "or cancel it:",
        f"    syncd actions cancel {row['id']}",
    ]
    if held_back:
        lines += ["", f"{held_back} more failure(s) of this rule were held back since the last "
                  "alert (see `syncd actions list --status dead --rule " + row["rule_id"] + "`)."]
    return subject, "\n".join(lines) + "\n"


def make_alerter(engine: Engine) -> Callable[[dict[str, Any], str], None] | None:
    """The executor's on_dead hook, or None when no alert address is configured."""
    cfg = engine.config.alerts
    if not cfg.to or cfg.via not in engine.connectors:
        if cfg.to:
            log.warning("alerts.disabled", reason=f"[{cfg.via}] connector not configured")
        return None
    period_ms = int(cfg.period_minutes * 60_000)

    def on_dead(row: dict[str, Any], reason: str) -> None:
        if is_alert(row["rule_id"]):
            return  # never alert about an alert
        now = to_ms(engine.clock.now())
        store = engine.store
        with store.tx() as conn:
            current = conn.execute(
                select(alerts).where(alerts.c.rule_id == row["rule_id"])
            ).mappings().first()
            if current is not None and now - current["last_sent_at"] < period_ms:
                conn.execute(update(alerts).where(alerts.c.rule_id == row["rule_id"]).values(
                    suppressed=alerts.c.suppressed + 1))
                return
            held_back = current["suppressed"] if current else 0
            store.upsert(conn, alerts, ["rule_id"], {
                "rule_id": row["rule_id"], "last_sent_at": now, "suppressed": 0})
            subject, body = alert_text(row, reason, held_back)
            ref = ObjectRef(row["source"], row["object_type"], row["object_id"]) \
                if row.get("source") else None
            planned = PlannedAction(
                key=make_key(ALERT_RULE_PREFIX, row["rule_id"], now // period_ms, row["key"]),
                rule_id=f"{ALERT_RULE_PREFIX}:{row['rule_id']}", connector=cfg.via,
                action="send", params={"to": list(cfg.to), "subject": subject, "body": body},
                ref=ref, guarantee="at_least_once",
            )
            insert_actions(store, conn, [planned], now)
        log.info("alert.queued", rule_id=row["rule_id"], to=list(cfg.to))

    return on_dead


def queue_notice(engine: Engine, topic: str, subject: str, body: str) -> bool:
    """An alert about syncd itself (not a dead action), at most one per topic per
    `[alerts] period_minutes` whatever the number of replicas. True when one was queued."""
    cfg = engine.config.alerts
    if not cfg.to or cfg.via not in engine.connectors:
        return False
    now = to_ms(engine.clock.now())
    period_ms = int(cfg.period_minutes * 60_000)
    rule_id = f"{ALERT_RULE_PREFIX}:{topic}"
    with engine.store.tx() as conn:
        current = conn.execute(
            select(alerts).where(alerts.c.rule_id == rule_id)).mappings().first()
        if current is not None and now - current["last_sent_at"] < period_ms:
            return False
        engine.store.upsert(conn, alerts, ["rule_id"], {
            "rule_id": rule_id, "last_sent_at": now, "suppressed": 0})
        planned = PlannedAction(
            # one key per period: two replicas noticing together queue one mail
            key=make_key(ALERT_RULE_PREFIX, topic, now // period_ms), rule_id=rule_id,
            connector=cfg.via, action="send",
            params={"to": list(cfg.to), "subject": subject, "body": body},
            ref=None, guarantee="at_least_once",
        )
        queued = insert_actions(engine.store, conn, [planned], now) > 0
    if queued:
        log.info("alert.queued", topic=topic, to=list(cfg.to))
    return queued
