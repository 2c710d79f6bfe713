"""The one planner: from rules and what happened to planned actions, plus each rule's decision.

Pure: no store, no connector, no clock (the caller passes `now`). Ingest (changes), the
scheduler (dates, cron), `syncd simulate`, `syncd explain` and the examples of `syncd check`
all plan here, so what ops test is what runs: the same events, the same `history: latest`,
the same action keys.

A `Decision` says for one rule what happened and why (fired, trigger did not match,
condition false and which part, condition error, render failed, not due); it is a plain
dataclass so a console can keep it as a trace.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from syncd.diff import Snapshot, diff, event_key
from syncd.mapping.conditions import as_datetime
from syncd.mapping.durations import parse_offset, parse_time_of_day, parse_zone
from syncd.mapping.model import ChangeTrigger, CreatedTrigger, CronTrigger, DateTrigger, Example
from syncd.mapping.problems import Problem
from syncd.mapping.rules import (
    CompiledRule,
    PlannedAction,
    RuleSet,
    condition_holds,
    event_matches,
    make_key,
    object_view,
    plan_actions,
    rule_data,
)
from syncd.model import Event, ObjectRef, Observation

FIRED = "fired"
NO_MATCH = "trigger did not match"
DISABLED = "disabled"
CONDITION_FALSE = "condition false"
CONDITION_ERROR = "condition error"
RENDER_FAILED = "render failed"
NOT_DUE = "not due"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Decision:
    rule_id: str
    outcome: str  # one of the constants above
    reason: str
    actions: tuple[PlannedAction, ...] = ()
    event: Event | None = None  # the event it was decided on (change rules)
    event_index: int | None = None  # its position in the events given to plan_change

    @property
    def fired(self) -> bool:
        return self.outcome == FIRED


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)

    @property
    def actions(self) -> list[PlannedAction]:
        """Every planned action (failed ones included, carrying their error), in order."""
        return [a for d in self.decisions for a in d.actions]


@dataclass(frozen=True)
class Situation:
    """What one rule is evaluated on. Kept (as JSON) with an action whose render failed, so
    the action can be planned again once the mapping is fixed."""

    now: datetime
    key_parts: tuple[Any, ...]
    ref: ObjectRef | None = None
    fields: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    event: Event | None = None
    item: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None
    trigger: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        ref = self.ref
        ev = self.event
        return _encode(
            {
                "now": self.now,
                "key_parts": list(self.key_parts),
                "ref": [ref.source, ref.type, ref.id] if ref else None,
                "fields": self.fields,
                "context": self.context,
                "previous": self.previous,
                "event": None
                if ev is None
                else {
                    "kind": ev.kind,
                    "field": ev.field,
                    "old": ev.old,
                    "new": ev.new,
                    "version": ev.version,
                },
                "item": self.item,
                "items": self.items,
                "trigger": self.trigger,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Situation:
        data = _decode(data)
        ref = ObjectRef(*data["ref"]) if data.get("ref") else None
        ev = data.get("event")
        return cls(
            now=data["now"],
            key_parts=tuple(data["key_parts"]),
            ref=ref,
            fields=data.get("fields"),
            context=data.get("context"),
            previous=data.get("previous"),
            event=None
            if ev is None or ref is None
            else Event(ref, ev["kind"], ev["field"], ev["old"], ev["new"], ev["version"]),
            item=data.get("item"),
            items=data.get("items"),
            trigger=data.get("trigger"),
        )


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__datetime__"}:
            return datetime.fromisoformat(value["__datetime__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# -- one rule, one situation ---------------------------------------------------------------


def first_failing(rule: CompiledRule, data: dict[str, Any]) -> str:
    """The first part of the condition that fails (for `explain`)."""
    for part in rule.condition_parts:
        if not part.test(data):
            return f"condition failed: {part.describe}"
    return "condition failed"


def decide(rule: CompiledRule, situation: Situation, event_index: int | None = None) -> Decision:
    """The rule's condition, then its actions. An exception in either fails this rule's
    actions (stored dead with the reason and the situation), never the caller.
    `event_index`: the decision's Decision.event_index (change rules)."""
    s = situation
    at = event_index
    if not rule.rule.enabled:
        return Decision(rule.id, DISABLED, "rule disabled", event=s.event, event_index=at)
    data = rule_data(
        rule,
        now=s.now,
        ref=s.ref,
        fields=s.fields,
        context=s.context,
        previous=s.previous,
        event=s.event,
        item=s.item,
        items=s.items,
        trigger=s.trigger,
    )
    try:
        holds = condition_holds(rule, data)
    except Exception as exc:
        replan = s.to_json()  # what `syncd actions retry` plans it again from
        reason = f"condition error: {type(exc).__name__}: {exc}"
        guarantee = rule.rule.guarantee or "at_least_once"
        failed = tuple(
            PlannedAction(
                make_key(rule.id, index, *s.key_parts),
                rule.id,
                act.connector,
                act.action,
                {},
                s.ref,
                guarantee,
                reason,
                replan,
            )
            for index, act in enumerate(rule.actions)
        )
        return Decision(rule.id, CONDITION_ERROR, reason, failed, s.event, at)
    if not holds:
        try:
            why = first_failing(rule, data)
        except Exception:  # the whole condition said no; that is the answer
            why = "condition failed"
        return Decision(rule.id, CONDITION_FALSE, why, event=s.event, event_index=at)
    planned = plan_actions(rule, data, s.key_parts, s.ref)
    errors = [p for p in planned if p.error]
    if errors:
        replan = s.to_json()
        planned = [dataclasses.replace(p, replan=replan) if p.error else p for p in planned]
        why = f"{errors[0].name}: {errors[0].error}"
        return Decision(rule.id, RENDER_FAILED, why, tuple(planned), s.event, at)
    return Decision(rule.id, FIRED, "fired", tuple(planned), s.event, at)


# -- changes (ingest, simulate, explain) ---------------------------------------------------


def candidates(rule: CompiledRule, events: list[Event]) -> list[tuple[int, Event]]:
    """Events a rule looks at: each transition, or with `history: latest` the net change."""
    indexed = list(enumerate(events))
    trigger = rule.trigger
    if not (isinstance(trigger, ChangeTrigger) and trigger.history == "latest"):
        return indexed
    steps = [s for s in indexed if s[1].kind == "changed" and s[1].field == trigger.field]
    if not steps:
        return []
    first, (position, last) = steps[0][1], steps[-1]
    if first.old == last.new:
        return []
    return [
        (position, Event(first.ref, "changed", trigger.field, first.old, last.new, last.version))
    ]


def change_key_parts(
    rule: CompiledRule, ref: ObjectRef, event: Event, key: str | None = None
) -> tuple[Any, ...]:
    """`key`: event_key(event), when the caller has it."""
    if rule.rule.once_per_object:
        return (str(ref),)
    return (str(ref), key if key is not None else event_key(event))


def plan_change(
    ruleset: RuleSet,
    ref: ObjectRef,
    fields: dict[str, Any],
    context: dict[str, Any],
    previous: dict[str, Any],
    events: list[Event],
    now: datetime,
    keys: list[str] | None = None,
) -> Plan:
    """Decisions of every change/created rule on `events` (new events of one object, in the
    order they happened); the fired ones in that order, then the rules that did not match.
    `keys`: the events' event_key, in their order, when the caller has them (ingest stored
    them): hashing each event again costs as much as a rule's decision."""
    matches = []
    unmatched = []
    for rule_index, rule in enumerate(ruleset.event_rules()):
        found = [(pos, ev) for pos, ev in candidates(rule, events) if event_matches(rule, ev)]
        if not found:
            unmatched.append(rule)
        for position, event in found:
            matches.append((position, rule_index, rule, event))
    plan = Plan()
    for position, _, rule, event in sorted(matches, key=lambda m: (m[0], m[1])):
        # A given event's key; a net change (`history: latest`) is an event of its own.
        key = keys[position] if keys is not None and event is events[position] else None
        parts = change_key_parts(rule, ref, event, key)
        situation = Situation(now, parts, ref, fields, context, previous, event)
        plan.decisions.append(decide(rule, situation, event_index=position))
    for rule in unmatched:
        outcome = DISABLED if not rule.rule.enabled else NO_MATCH
        reason = (
            "rule disabled"
            if not rule.rule.enabled
            else why_no_match(rule, ref, fields, previous, events)
        )
        plan.decisions.append(Decision(rule.id, outcome, reason))
    return plan


def why_no_match(
    rule: CompiledRule,
    ref: ObjectRef,
    fields: dict[str, Any],
    previous: dict[str, Any],
    events: list[Event],
) -> str:
    t = rule.trigger
    if (ref.source, ref.type) != (t.source, t.object):
        return f"trigger is for {t.source}.{t.object}"
    if isinstance(t, CreatedTrigger):
        return "trigger is object created; this change is an update"
    steps = [e for e in events if e.kind == "changed" and e.field == t.field]
    if not steps:
        return f"field {t.field} did not change"
    shown = ", ".join(f"{e.old!r} -> {e.new!r}" for e in steps)
    return f"{t.field} changed {shown}; trigger wants from={t.from_!r} to={t.to!r}"


# -- dates and cron (scheduler, explain) ---------------------------------------------------


def fire_time(trigger: DateTrigger, value: Any) -> datetime | None:
    """When a date trigger fires for a field value (a date, datetime or epoch ms)."""
    zone = parse_zone(trigger.timezone)
    offset = parse_offset(trigger.offset)
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        day: date | None = date.fromisoformat(value.strip())
        moment = None
    else:
        moment = as_datetime(value)
        if moment is None:
            return None
        day = moment.astimezone(zone).date()
    if trigger.at is None and moment is not None:
        return moment + offset
    at = parse_time_of_day(trigger.at or "00:00")
    # Aware arithmetic with one tzinfo is wall-clock arithmetic: 09:00 stays 09:00 across DST.
    assert day is not None
    return datetime.combine(day, at, tzinfo=zone) + offset


def date_situation(
    rule: CompiledRule,
    ref: ObjectRef,
    fields: dict[str, Any],
    context: dict[str, Any],
    value: Any,
    due: datetime,
    now: datetime,
) -> Situation:
    return Situation(
        now,
        (str(ref), "date", str(value)),
        ref,
        fields,
        context,
        {},
        trigger={"date": value, "due": due},
    )


def date_value(rule: CompiledRule, fields: dict[str, Any], entered: dict[str, Any]) -> Any:
    """The value a date rule's trigger reads, or None (not in the entered state, no date)."""
    trigger: DateTrigger = rule.trigger
    if trigger.entered is not None:
        name = trigger.entered.field
        if rule.canon(name, fields.get(name)) != rule.canon(name, trigger.entered.value):
            return None
        return entered.get(name)
    return fields.get(str(trigger.date))


def cron_situation(
    instant: datetime,
    now: datetime,
    item: dict[str, Any] | None = None,
    ref: ObjectRef | None = None,
    items: list[dict[str, Any]] | None = None,
) -> Situation:
    instant_ms = int(instant.timestamp() * 1000)
    parts: tuple[Any, ...] = (instant_ms, str(ref)) if item is not None else (instant_ms,)
    return Situation(
        now,
        parts,
        ref if item is not None else None,
        item=item,
        items=items,
        trigger={"instant": instant},
    )


def explain_time_rule(
    rule: CompiledRule,
    ref: ObjectRef,
    fields: dict[str, Any],
    context: dict[str, Any],
    now: datetime,
) -> Decision:
    """What a date or cron rule would do for this object at `now` (explain lists them all)."""
    from croniter import croniter

    trigger = rule.trigger
    if not rule.rule.enabled:
        return Decision(rule.id, DISABLED, "rule disabled")
    if isinstance(trigger, DateTrigger):
        if (ref.source, ref.type) != (trigger.source, trigger.object):
            return Decision(rule.id, NO_MATCH, f"date rule for {trigger.source}.{trigger.object}")
        entered = {trigger.entered.field: to_ms(now)} if trigger.entered else {}
        value = date_value(rule, fields, entered)
        if value in (None, ""):
            what = (
                f"{trigger.entered.field} is not {trigger.entered.value!r}"
                if trigger.entered
                else f"field {trigger.date} is empty"
            )
            return Decision(rule.id, NO_MATCH, f"date rule: {what}")
        due = fire_time(trigger, value)
        if due is None:
            return Decision(rule.id, NO_MATCH, f"date rule: {value!r} is not a date")
        if due > now:
            return Decision(rule.id, NOT_DUE, f"date rule: due {due.isoformat()}")
        return decide(rule, date_situation(rule, ref, fields, context, value, due, now))
    assert isinstance(trigger, CronTrigger)
    zone = parse_zone(trigger.timezone)
    instant: datetime = croniter(trigger.cron, now.astimezone(zone)).get_next(datetime)
    spec = trigger.for_each
    if spec is None or (spec.source, spec.object) != (ref.source, ref.type):
        return Decision(rule.id, NOT_DUE, f"cron rule: next run {instant.isoformat()}")
    item = object_view(ref, fields, context)
    decision = decide(rule, cron_situation(instant, instant, item, ref))
    return dataclasses.replace(
        decision, reason=f"cron rule, at its next run {instant.isoformat()}: {decision.reason}"
    )


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- event files and examples --------------------------------------------------------------


@dataclass
class Change:
    """A change as ops write it in an event file or an example (see README, "Event files").

    `previous` holds the fields that differed before (the others are as in `fields`);
    `created: true` means the object is new (no previous state)."""

    ref: ObjectRef
    fields: dict[str, Any]
    previous: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    created: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        """{"source": "hubspot", "object": "deal", "id": "42", "fields": {...},
        "previous": {...}, "context": {...}, "created": false, "now": "...", "version": 1}"""
        now = as_datetime(data.get("now")) if data.get("now") else None
        version = data.get("version")
        return cls(
            ref=ObjectRef(str(data["source"]), str(data["object"]), str(data.get("id", "1"))),
            fields=dict(data.get("fields") or {}),
            previous=dict(data.get("previous") or {}),
            context=dict(data.get("context") or {}),
            created=bool(data.get("created", False)),
            now=now or datetime.now(UTC),
            version=int(version) if version is not None else None,
        )

    def resolved(self, ruleset: RuleSet) -> Change:
        """Stage labels written as the rules know them ("Closed Won") turned into the ids
        the source stores ("closedwon"), with the same aliases production uses."""
        names: dict[str, dict[str, str]] = {}
        for rule in ruleset.rules:
            t = rule.trigger
            if (getattr(t, "source", None), getattr(t, "object", None)) == (
                self.ref.source,
                self.ref.type,
            ):
                for name, aliases in rule.aliases.items():
                    names.setdefault(name, {}).update(aliases)

        def fix(values: dict[str, Any]) -> dict[str, Any]:
            return {
                k: names.get(k, {}).get(v, v) if isinstance(v, str) else v
                for k, v in values.items()
            }

        return dataclasses.replace(self, fields=fix(self.fields), previous=fix(self.previous))

    def observation(self) -> Observation:
        return Observation(self.ref, dict(self.fields), self.version, context=dict(self.context))

    def snapshot(self) -> Snapshot | None:
        if self.created:
            return None
        return Snapshot(None, {**self.fields, **self.previous}, dict(self.context), {})


def plan_event_file(ruleset: RuleSet, change: Change) -> Plan:
    """What ingest would plan for this change: the same diff, the same planner."""
    change = change.resolved(ruleset)
    obs, snap = change.observation(), change.snapshot()
    events = diff(obs, snap, ruleset.watched_fields(change.ref.source, change.ref.type))
    previous = snap.fields if snap else {}
    return plan_change(
        ruleset, change.ref, change.fields, change.context, previous, events, change.now
    )


def explain_change(ruleset: RuleSet, change: Change) -> list[Decision]:
    """Every rule's decision for this change, in the order of the mapping files."""
    plan = plan_event_file(ruleset, change)
    resolved = change.resolved(ruleset)
    by_rule: dict[str, list[Decision]] = {}
    for d in plan.decisions:
        by_rule.setdefault(d.rule_id, []).append(d)
    out: list[Decision] = []
    for rule in ruleset.rules:
        if rule.id in by_rule:
            out.extend(by_rule[rule.id])
        else:
            out.append(
                explain_time_rule(
                    rule, resolved.ref, resolved.fields, resolved.context, resolved.now
                )
            )
    return out


def _example_planned(rule: CompiledRule, ex: Example) -> list[PlannedAction]:
    # Examples hold for the values the file documents (an example may try another setting
    # of a switch), whatever [syncd] vars a deployment chose.
    rule = dataclasses.replace(rule, vars={**rule.file_vars, **ex.vars})
    t = rule.trigger
    now = as_datetime(ex.now) if ex.now else datetime(2026, 1, 1, tzinfo=UTC)
    assert now is not None
    if isinstance(t, CronTrigger):
        situation = Situation(
            now, ("example",), item=ex.item, items=ex.items, trigger={"instant": now}
        )
        return list(decide(rule, situation).actions)
    ref = ObjectRef(t.source, t.object, str(ex.object.get("id", "example")))
    if isinstance(t, DateTrigger):
        value = ex.object.get(t.date) if t.date else None
        # As the scheduler gives it: `due` is when the firing was due (templates can tell a
        # late firing, e.g. a date entered after its mark, from a punctual one).
        due = fire_time(t, value) if value not in (None, "") else None
        situation = Situation(
            now,
            ("example",),
            ref,
            ex.object,
            ex.context,
            ex.previous,
            trigger={"date": value, "due": due},
        )
        return list(decide(rule, situation).actions)
    change = Change(
        ref, ex.object, ex.previous, ex.context, created=isinstance(t, CreatedTrigger), now=now
    )
    return plan_event_file(RuleSet([rule]), change).actions


def _compare(planned: list[PlannedAction], expect: list[dict[str, Any]]) -> str | None:
    for p in planned:
        if p.error:
            return f"{p.name}: {p.error}"
    if len(planned) != len(expect):
        got = [p.name for p in planned]
        want = [e.get("action") for e in expect]
        return f"expected actions {want}, planned {got}"
    for i, (p, e) in enumerate(zip(planned, expect, strict=True)):
        if e.get("action") != p.name:
            return f"action {i}: expected {e.get('action')}, planned {p.name}"
        for key, value in e.items():
            if key == "action":
                continue
            if key not in p.params:
                return f"action {i} ({p.name}): no parameter {key!r}"
            if p.params[key] != value:
                return f"action {i} ({p.name}): {key} is {p.params[key]!r}, expected {value!r}"
    return None


def run_examples(ruleset: RuleSet) -> list[Problem]:
    problems = []
    for rule in ruleset.rules:
        for index, ex in enumerate(rule.rule.examples):
            message = _compare(_example_planned(rule, ex), ex.expect)
            if message:
                label = f"examples.{index}" + (f" ({ex.name})" if ex.name else "")
                problems.append(
                    Problem(rule.file, rule.line, rule.id, label, f"example failed: {message}")
                )
    return problems
