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

from syncd.clock import to_ms
from syncd.ingest import insert_actions
from syncd.mapping.rules import PlannedAction, make_key
from syncd.metrics import RULE_FAILURES
from syncd.store import actions as outbox
from syncd.store import alerts as sent
from syncd.store import inbox as deliveries
from syncd.store.actions import ActionRow
from syncd.store.events import read_snapshot

if TYPE_CHECKING:
    from syncd.engine import Engine

log = structlog.get_logger("syncd.alerts")
ALERT_RULE_PREFIX = "syncd.alert"


def is_alert(rule_id: str) -> bool:
    return rule_id.startswith(ALERT_RULE_PREFIX)


def alert_text(row: ActionRow, reason: str, held_back: int) -> tuple[str, str]:
    obj = f"{row.source}:{row.object_type}:{row.object_id}" if row.source else "-"
    subject = f"[syncd] rule {row.rule_id} failed: {row.connector}.{row.action}"
    lines = [
        f"Rule:    {row.rule_id}",
        f"Action:  {row.connector}.{row.action} (id {row.id}, key {row.key})",
        f"Object:  {obj}",
        f"Error:   {reason}",
        "",
        "The action is dead: syncd will not try it again by itself. After fixing the cause:",
        f"    syncd actions retry {row.id}",
        "or cancel it:",
        f"    syncd actions cancel {row.id}",
    ]
    if held_back:
        lines += [
            "",
            f"{held_back} more failure(s) of this rule were held back since the last "
            "alert (see `syncd actions list --status dead --rule " + row.rule_id + "`).",
        ]
    return subject, "\n".join(lines) + "\n"


def failure_kind(row: ActionRow) -> str:
    """What failed: a template ("render"), a condition, or the action at its target."""
    error = row.last_error or ""
    if row.status == "dead" and not row.attempts:
        return "condition" if error.startswith("condition error") else "render"
    return "action"


def alert_key(rule_id: str, kind: str) -> str:
    """The alerts row of one (rule, kind): a rule's execution failures keep the plain id."""
    return rule_id if kind == "action" else f"{rule_id}#{kind}"


def object_lines(engine: Engine, row: ActionRow) -> list[str]:
    """The object by its name and link, as ops know it (not `hubspot:deal:1003`)."""
    if not row.source or row.object_type is None or row.object_id is None:
        return []
    snap = read_snapshot(engine.store, row.source, row.object_type, row.object_id)
    fields = dict(snap.fields or {}) if snap else {}
    context = dict(snap.context or {}) if snap else {}
    name = next(
        (
            str(v)
            for k in ("dealname", "name", "title", "summary", "Name", "subject")
            for v in [fields.get(k, context.get(k))]
            if v
        ),
        None,
    )
    link = next(
        (
            str(v)
            for k in ("url", "link", "html_url", "hs_url")
            for v in [context.get(k, fields.get(k))]
            if v
        ),
        None,
    )
    out = [f"Name:    {name}"] if name else []
    return out + ([f"Link:    {link}"] if link else [])


def fix_lines(row: ActionRow, kind: str) -> list[str]:
    rule = row.rule_id
    if kind == "render":
        return [
            "A template of this rule failed, so nothing was sent. To fix it:",
            f"  1. correct the template of rule {rule} in its mapping file (the error "
            "above names the field);",
            "     a field the source does not send is fetched once a rule uses it;",
            "  2. run `syncd check`, then reload (systemctl reload syncd);",
            f"  3. syncd actions retry --rule {rule}",
            "     (each failed action is planned again with the fixed rule, then performed once)",
        ]
    if kind == "condition":
        return [
            "The condition of this rule could not be evaluated on this record's data "
            "(see README, conditions: numbers, dates). To fix it:",
            "  1. correct the value in the record, or the condition of rule "
            f"{rule} in its mapping file;",
            "  2. run `syncd check`, then reload (systemctl reload syncd);",
            f"  3. syncd actions retry --rule {rule}",
        ]
    return []


def make_alerter(engine: Engine) -> Callable[[ActionRow, str], None] | None:
    """The executor's on_dead hook, or None when no alert address is configured."""
    cfg = engine.config.alerts
    if not cfg.to or cfg.via not in engine.connectors:
        if cfg.to:
            log.warning("alerts.disabled", reason=f"[{cfg.via}] connector not configured")
        return None
    period_ms = int(cfg.period_minutes * 60_000)

    def on_dead(row: ActionRow, reason: str) -> None:
        if is_alert(row.rule_id):
            return  # never alert about an alert
        kind = failure_kind(row)
        if kind == "action":  # the planning kinds are counted where they are planned
            RULE_FAILURES.labels(row.rule_id, kind).inc()
        akey = alert_key(row.rule_id, kind)
        now = to_ms(engine.clock.now())
        store = engine.store
        extra = object_lines(engine, row)
        with store.tx() as conn:
            current = sent.alert_for_update(conn, akey)
            if current is not None and now - current.last_sent_at < period_ms:
                sent.hold_back(conn, akey)
                return
            held_back = current.suppressed if current else 0
            sent.mark_sent(store, conn, akey, now)
            subject, body = alert_text(row, reason, held_back)
            if kind != "action":
                subject = f"[syncd] rule {row.rule_id} failed: {kind} error"
            body = _with(body, extra, fix_lines(row, kind))
            ref = row.ref
            planned = PlannedAction(
                key=make_key(ALERT_RULE_PREFIX, akey, now // period_ms, row.key),
                rule_id=f"{ALERT_RULE_PREFIX}:{row.rule_id}",
                connector=cfg.via,
                action="send",
                params={"to": list(cfg.to), "subject": subject, "body": body},
                ref=ref,
                guarantee="at_least_once",
            )
            insert_actions(store, conn, [planned], now)
        log.info("alert.queued", rule_id=row.rule_id, kind=kind, to=list(cfg.to))

    return on_dead


def _with(body: str, object_info: list[str], fix: list[str]) -> str:
    lines = body.splitlines()
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("Object:")), len(lines))
    lines[at:at] = object_info
    if fix:
        lines += ["", *fix]
    return "\n".join(lines) + "\n"


PLAN_CURSOR = "planned_dead_after"


def sweep(engine: Engine) -> int:
    """Alerts the executor cannot send: actions planned dead (a template or a condition
    failed; the executor never sees them), and the digest of a (rule, kind) whose period
    ended with failures held back. Returns the alerts queued."""
    from syncd.kv import KeyValue

    on_dead = make_alerter(engine)
    if on_dead is None:
        return 0
    cfg = engine.config.alerts
    state = KeyValue(engine.store, ALERT_RULE_PREFIX, engine.clock)
    after = int(state.get(PLAN_CURSOR, 0))
    with engine.store.engine.connect() as conn:  # one snapshot for the rows and the newest id
        rows = outbox.list_actions(
            engine.store, after_id=after, status="dead", attempts=0, limit=500, conn=conn
        )
        newest = outbox.newest_action_id(conn)
    queued = 0
    for row in rows:
        if not is_alert(row.rule_id):
            on_dead(row, row.last_error or "failed")
            queued += 1
    state.set(PLAN_CURSOR, rows[-1].id if len(rows) == 500 else max(after, newest))
    queued += _inbox_failures(engine, state)
    return queued + _digests(engine, int(cfg.period_minutes * 60_000))


INBOX_CURSOR = "failed_deliveries_after"


def _inbox_failures(engine: Engine, state: Any) -> int:
    """Webhook deliveries given up on (their fetch kept failing): one mail per connector and
    period, with the command that sends them through again."""
    after = int(state.get(INBOX_CURSOR, 0))
    rows, errors = deliveries.failed_since(engine.store, after)
    queued = 0
    newest = after
    for connector, count, last_id, first_id in rows:
        newest = max(newest, last_id)
        body = (
            f"{count} {connector} webhook delivery(ies) failed for good: syncd could not "
            f"process them (e.g. fetching the changed object kept failing).\n\n"
            f"Last error: {errors.get(connector) or '-'}\n\n"
            f"See them:     syncd inbox list --status failed\n"
            f"After fixing the cause (credentials, permissions, the API's status):\n"
            f"              syncd inbox retry {first_id}   (one per delivery)\n"
            "Polling still sees the changes within the poll interval.\n"
        )
        if queue_notice(
            engine,
            f"inbox:{connector}",
            f"[syncd] {connector} webhook deliveries failed ({count})",
            body,
        ):
            queued += 1
    if newest != after:
        state.set(INBOX_CURSOR, newest)
    return queued


def _digests(engine: Engine, period_ms: int) -> int:
    """Failures held back during a period that has ended: one digest mail each."""
    now = to_ms(engine.clock.now())
    due = sent.digests_due(engine.store, now, period_ms, ALERT_RULE_PREFIX)
    mailed = 0
    for row in due:
        rule_id, _, kind = row.rule_id.partition("#")
        kind = kind or "action"
        body = (
            f"Rule {rule_id} kept failing ({kind} errors): {row.suppressed} more "
            f"failure(s) since the last alert, held back to avoid a flood.\n\n"
            f"See them:     syncd actions list --status dead --rule {rule_id}\n"
            f"After fixing: syncd actions retry --rule {rule_id}\n"
        )
        if queue_notice(
            engine,
            f"digest:{row.rule_id}",
            f"[syncd] digest: rule {rule_id} failed {row.suppressed} more time(s) ({kind})",
            body,
            period_ms=0,
        ):
            sent.digest_sent(engine.store, row.rule_id, now)
            mailed += 1
    return mailed


def queue_notice(
    engine: Engine, topic: str, subject: str, body: str, period_ms: int | None = None
) -> bool:
    """An alert about syncd itself (not a dead action), at most one per topic per
    `[alerts] period_minutes` whatever the number of replicas. True when one was queued."""
    cfg = engine.config.alerts
    if not cfg.to or cfg.via not in engine.connectors:
        return False
    now = to_ms(engine.clock.now())
    if period_ms is None:
        period_ms = int(cfg.period_minutes * 60_000)
    rule_id = f"{ALERT_RULE_PREFIX}:{topic}"
    with engine.store.tx() as conn:
        current = sent.alert_for_update(conn, rule_id)
        if current is not None and now - current.last_sent_at < period_ms:
            return False
        sent.mark_sent(engine.store, conn, rule_id, now)
        planned = PlannedAction(
            # one key per period: two replicas noticing together queue one mail
            key=make_key(ALERT_RULE_PREFIX, topic, now // period_ms if period_ms else now),
            rule_id=rule_id,
            connector=cfg.via,
            action="send",
            params={"to": list(cfg.to), "subject": subject, "body": body},
            ref=None,
            guarantee="at_least_once",
        )
        queued = insert_actions(engine.store, conn, [planned], now) > 0
    if queued:
        log.info("alert.queued", topic=topic, to=list(cfg.to))
    return queued


def failing_rules(engine: Engine, window_ms: int) -> list[dict[str, Any]]:
    """Rules whose actions went dead within `window_ms`, by kind, most recent first: what
    `syncd status` and /readyz report (a rule that keeps failing is not a healthy daemon)."""
    since = to_ms(engine.clock.now()) - window_ms
    rows = outbox.dead_counts_since(engine.store, since, ALERT_RULE_PREFIX)
    # attempts 0: planned dead (a template or condition failed); else dead at its target
    totals: dict[tuple[str, str], list[int]] = {}
    for rule_id, attempts, count, last in rows:
        kind = "render/condition" if attempts == 0 else "action"
        entry = totals.setdefault((rule_id, kind), [0, 0])
        entry[0] += count
        entry[1] = max(entry[1], last)
    out = []
    for (rule_id, kind), (count, _last) in sorted(totals.items(), key=lambda t: -t[1][1]):
        out.append(
            {
                "rule": rule_id,
                "kind": kind,
                "failures": count,
                "see": f"syncd actions list --status dead --rule {rule_id}",
            }
        )
    return out
