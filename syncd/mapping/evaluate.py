"""Dry runs: which rules fire for a given change, and why the others do not.

Shared by `syncd simulate`, `syncd explain` and the examples that `syncd check` runs.
Nothing here touches the store or a connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.mapping.conditions import as_datetime
from syncd.mapping.model import CreatedTrigger, CronTrigger, DateTrigger, Example
from syncd.mapping.rules import (
    CompiledRule,
    PlannedAction,
    RuleSet,
    event_matches,
    plan_if_holds,
    rule_data,
)
from syncd.model import Event, ObjectRef


@dataclass
class Verdict:
    rule_id: str
    fired: bool
    reason: str
    planned: list[PlannedAction] = field(default_factory=list)


@dataclass
class Change:
    """A change as ops write it in an event file or an example."""

    ref: ObjectRef
    fields: dict[str, Any]
    previous: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    created: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        """{"source": "hubspot", "object": "deal", "id": "42", "fields": {...},
        "previous": {...}, "context": {...}, "created": false, "now": "..."}"""
        now = as_datetime(data.get("now")) if data.get("now") else datetime.now(UTC)
        return cls(
            ref=ObjectRef(str(data["source"]), str(data["object"]), str(data.get("id", "1"))),
            fields=dict(data.get("fields", {})),
            previous=dict(data.get("previous", {})),
            context=dict(data.get("context", {})),
            created=bool(data.get("created", False)),
            now=now or datetime.now(UTC),
        )

    def events(self) -> list[Event]:
        if self.created:
            out = [Event(self.ref, "created")]
            out += [Event(self.ref, "changed", k, None, v) for k, v in self.fields.items()]
            return out
        return [
            Event(self.ref, "changed", k, self.previous.get(k), v)
            for k, v in self.fields.items()
            if k in self.previous and self.previous.get(k) != v
        ]


def _first_failing(rule: CompiledRule, data: dict[str, Any]) -> str:
    """Name the first part of the condition that fails (for `explain`)."""
    cond = rule.rule.if_ or {}
    from syncd.mapping.conditions import compile_condition

    for key, value in cond.items():
        part = compile_condition({key: value}, rule.aliases)
        if not part.test(data):
            return f"condition failed: {part.describe}"
    return "condition failed"


def evaluate_change(ruleset: RuleSet, change: Change) -> list[Verdict]:
    verdicts = []
    events = change.events()
    for rule in ruleset.event_rules():
        matching = [e for e in events if event_matches(rule, e)]
        if not rule.rule.enabled:
            verdicts.append(Verdict(rule.id, False, "rule disabled"))
            continue
        if not matching:
            verdicts.append(Verdict(rule.id, False, _why_no_match(rule, change)))
            continue
        event = matching[0]
        data = rule_data(
            rule, now=change.now, ref=change.ref, fields=change.fields,
            context=change.context, previous=change.previous, event=event,
        )
        key_parts = (str(change.ref),) if rule.rule.once_per_object else (
            str(change.ref), event.field, event.old, event.new)
        planned = plan_if_holds(rule, data, key_parts, change.ref)
        if not planned and rule.actions:
            verdicts.append(Verdict(rule.id, False, _first_failing(rule, data)))
            continue
        verdicts.append(Verdict(rule.id, True, "fired", planned))
    return verdicts


def _why_no_match(rule: CompiledRule, change: Change) -> str:
    t = rule.trigger
    if (change.ref.source, change.ref.type) != (t.source, t.object):
        return f"trigger is for {t.source}.{t.object}"
    if isinstance(t, CreatedTrigger):
        return "trigger is object created; this change is an update"
    if t.field not in change.fields or t.field not in change.previous:
        return f"field {t.field} did not change"
    old, new = change.previous.get(t.field), change.fields.get(t.field)
    if old == new:
        return f"field {t.field} did not change"
    return f"{t.field} changed {old!r} -> {new!r}; trigger wants from={t.from_!r} to={t.to!r}"


def _example_planned(rule: CompiledRule, ex: Example) -> list[PlannedAction]:
    t = rule.trigger
    now = as_datetime(ex.now) if ex.now else datetime(2026, 1, 1, tzinfo=UTC)
    assert now is not None
    if isinstance(t, CronTrigger):
        data = rule_data(rule, now=now, item=ex.item, items=ex.items, trigger={"instant": now})
        return plan_if_holds(rule, data, ("example",), None)
    ref = ObjectRef(t.source, t.object, str(ex.object.get("id", "example")))
    if isinstance(t, DateTrigger):
        data = rule_data(
            rule, now=now, ref=ref, fields=ex.object, context=ex.context, previous=ex.previous,
            trigger={"date": ex.object.get(t.date) if t.date else None},
        )
        return plan_if_holds(rule, data, ("example",), ref)
    change = Change(
        ref, ex.object, ex.previous, ex.context, created=isinstance(t, CreatedTrigger), now=now
    )
    single = RuleSet([rule])
    return [p for v in evaluate_change(single, change) for p in v.planned]


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


def run_examples(ruleset: RuleSet) -> list[Any]:
    from syncd.mapping.loader import Problem

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
