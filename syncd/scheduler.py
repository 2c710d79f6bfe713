"""Time triggers: dates relative to a field ("60 days before end_date at 09:00") and cron.

Dates come from snapshots, so evaluating them costs no API call. Each firing has a
deterministic key, (rule, object, date value) or (rule, instant, item), so a restart, a
second replica or a second tick cannot fire it twice; a changed date is a new key, which
re-arms the rule. After downtime, firings missed within the grace period fire once; a date
due before its source went live is history and fires only with `catch_up` (syncd.golive).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from syncd.clock import Clock, from_ms, to_ms
from syncd.connector import Connector
from syncd.errors import TransientError
from syncd.golive import GoLive
from syncd.ingest import RulesHolder, insert_actions
from syncd.leadership import check_fence
from syncd.mapping.durations import parse_zone
from syncd.mapping.model import CronTrigger, DateTrigger
from syncd.mapping.planner import (
    cron_situation,
    date_situation,
    date_value,
    decide,
    fire_time,
)
from syncd.mapping.rules import CompiledRule, PlannedAction, make_key, object_view
from syncd.model import ObjectRef
from syncd.store import state
from syncd.store.db import ACTIONS_CHANNEL, Store
from syncd.store.events import SnapshotRow, live_snapshots
from syncd.store.fired import mark_fired

log = structlog.get_logger("syncd.scheduler")
SCHEDULER_JOB = "scheduler"
MAX_INSTANTS_PER_TICK = 100


class Scheduler:
    def __init__(
        self,
        store: Store,
        rules: RulesHolder,
        connectors: dict[str, Connector],
        clock: Clock,
        grace_hours: float = 24,
        golive: GoLive | None = None,
    ) -> None:
        self.golive = golive or GoLive(store, clock)
        self.store = store
        self.rules = rules
        self.connectors = connectors
        self.clock = clock
        self.grace = timedelta(hours=grace_hours)
        self.fence: int | None = None

    def tick(self, fence: int | None = None) -> int:
        """Fire what is due. `fence`: the scheduler leadership's token (replicas)."""
        self.fence = fence
        planned = 0
        for rule in self.rules.current.date_rules():
            planned += self._date_rule(rule)
        for rule in self.rules.current.cron_rules():
            try:
                planned += self._cron_rule(rule)
            except TransientError as exc:
                log.warning("cron.query_failed", rule_id=rule.id, error=str(exc))
        return planned

    # -- date rules ---------------------------------------------------------------------

    def _date_rule(self, rule: CompiledRule) -> int:
        trigger: DateTrigger = rule.trigger
        now = self.clock.now()
        rows = live_snapshots(self.store, trigger.source, trigger.object)
        # A date due before the source went live is history, not downtime: the grace period
        # does not reach back before go-live (only `catch_up` does).
        source = self.connectors.get(trigger.source)
        golive = (
            self.golive.instant(trigger.source)
            if getattr(source, "golive_baseline", True)
            else None
        )
        batch: list[PlannedAction] = []
        for row in rows:
            batch.extend(self._date_object(rule, trigger, row, now, golive))
        if not batch:
            return 0
        with self.store.tx() as conn:
            check_fence(conn, SCHEDULER_JOB, self.fence)
            count = insert_actions(self.store, conn, batch, to_ms(now))
            if count:
                self.store.notify(conn, ACTIONS_CHANNEL)
        if count:
            log.info("date_rule.fired", rule_id=rule.id, actions=count)
        return count

    def _date_object(
        self,
        rule: CompiledRule,
        trigger: DateTrigger,
        row: SnapshotRow,
        now: datetime,
        golive_ms: int | None = None,
    ) -> list[PlannedAction]:
        fields, entered = row.fields, row.entered or {}
        name = trigger.entered.field if trigger.entered is not None else str(trigger.date)
        value = date_value(rule, fields, entered)
        if value in (None, ""):
            return []
        due = fire_time(trigger, value)
        if due is None or due > now:
            return []
        if not trigger.catch_up:
            if due < now - self.grace:
                return []
            if golive_ms is not None and to_ms(due) < golive_ms:
                return []
            set_at = entered.get(name)
            if trigger.entered is None and set_at is not None and set_at > to_ms(due):
                return []  # the date was set or moved into the past: not fired
        ref = ObjectRef(row.source, row.object_type, row.object_id)
        situation = date_situation(rule, ref, fields, row.context, value, due, now)
        return list(decide(rule, situation).actions)

    # -- cron rules ---------------------------------------------------------------------

    def _cron_rule(self, rule: CompiledRule) -> int:
        trigger: CronTrigger = rule.trigger
        now = self.clock.now()
        last_ms = self._get_state("cron", rule.id)
        if last_ms is None:  # first sight of this rule: start from now, fire nothing past
            self._set_state("cron", rule.id, to_ms(now))
            return 0
        start = from_ms(int(last_ms))
        if not trigger.catch_up:
            start = max(start, now - self.grace)
        zone = parse_zone(trigger.timezone)
        from croniter import croniter  # with dateutil ~2 MB: only daemons with cron rules

        it = croniter(trigger.cron, start.astimezone(zone))
        planned = 0
        for _ in range(MAX_INSTANTS_PER_TICK):
            instant: datetime = it.get_next(datetime)
            if instant > now:
                break
            planned += self._fire_instant(rule, trigger, instant, now)
        else:
            log.warning("cron.too_many_instants", rule_id=rule.id)
        return planned

    def _fire_instant(
        self, rule: CompiledRule, trigger: CronTrigger, instant: datetime, now: datetime
    ) -> int:
        instant_ms = to_ms(instant)
        trigger_key = make_key(rule.id, "cron", instant_ms)
        batch: list[PlannedAction] = []
        if trigger.for_each is not None:
            for obs in self._query(trigger.for_each):
                item = object_view(obs.ref, obs.fields, obs.context)
                batch += decide(rule, cron_situation(instant, now, item, obs.ref)).actions
        else:
            items = None
            if trigger.collect is not None:
                items = [
                    object_view(o.ref, o.fields, o.context) for o in self._query(trigger.collect)
                ]
            batch += decide(rule, cron_situation(instant, now, items=items)).actions
        with self.store.tx() as conn:
            check_fence(conn, SCHEDULER_JOB, self.fence)
            count = insert_actions(self.store, conn, batch, to_ms(now))
            if count:
                self.store.notify(conn, ACTIONS_CHANNEL)
            mark_fired(self.store, conn, trigger_key, rule.id, to_ms(now))
            self._set_state("cron", rule.id, instant_ms, conn)
        log.info("cron.fired", rule_id=rule.id, instant=instant.isoformat(), actions=count)
        return count

    def _query(self, spec: Any) -> list[Any]:
        connector = self.connectors.get(spec.source)
        if connector is None:
            raise TransientError(f"connector {spec.source!r} is not configured")
        return list(connector.query(spec.object, spec.query))

    # -- small persistent state ---------------------------------------------------------

    def _get_state(self, scope: str, key: str) -> Any:
        return state.get_value(self.store, scope, key)

    def _set_state(self, scope: str, key: str, value: Any, conn: Any = None) -> None:
        state.set_value(self.store, scope, key, value, to_ms(self.clock.now()), conn)
