"""Compiled rules and the one function that turns a rule plus data into planned actions.

Which rules run on what, and the decisions they make, is syncd.mapping.planner: ingest,
the scheduler, `simulate`, `explain` and the examples of `syncd check` all plan there.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.mapping.conditions import Compiled, compile_condition
from syncd.mapping.model import (
    ChangeTrigger,
    CreatedTrigger,
    CronTrigger,
    DateTrigger,
    Rule,
)
from syncd.mapping.templates import RenderScope, TemplateProblem, render_value
from syncd.model import Event, ObjectRef


@dataclass
class CompiledAction:
    connector: str
    action: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.connector}.{self.action}"


@dataclass
class CompiledRule:
    rule: Rule
    file: str
    base_dir: Path
    condition: Compiled | None
    actions: list[CompiledAction]
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    line: int | None = None
    vars: dict[str, Any] = field(default_factory=dict)  # the file's `vars:`, config applied
    file_vars: dict[str, Any] = field(default_factory=dict)  # as written (examples use them)

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def trigger(self) -> Any:
        return self.rule.when

    @functools.cached_property
    def condition_parts(self) -> list[Compiled]:
        """Each top-level part of the condition alone, compiled once (to say which failed)."""
        return [compile_condition({k: v}, self.aliases) for k, v in (self.rule.if_ or {}).items()]

    def canon(self, field_name: str, value: Any) -> Any:
        aliases = self.aliases.get(field_name, {})
        return aliases.get(value, value) if isinstance(value, str) else value


@dataclass
class PlannedAction:
    key: str
    rule_id: str
    connector: str
    action: str
    params: dict[str, Any]
    ref: ObjectRef | None
    guarantee: str
    error: str | None = None  # rendering failed: stored as a dead action, never lost
    # With an error: the situation to plan it again from (syncd.mapping.planner.Situation).
    replan: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.connector}.{self.action}"


def make_key(*parts: Any) -> str:
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def template_roots(rule: Rule) -> set[str]:
    """The names a rule's templates may use."""
    roots = {"rule", "now", "trigger", "vars"}
    trigger = rule.when
    if isinstance(trigger, CronTrigger):
        if trigger.for_each:
            roots |= {"item", trigger.for_each.object}
        if trigger.collect:
            roots.add("items")
        return roots
    roots |= {"object", "previous", trigger.object}
    if isinstance(trigger, ChangeTrigger | CreatedTrigger):
        roots.add("event")
    return roots


def object_view(ref: ObjectRef, fields: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """What templates and conditions see as the object: its fields, then context, then id."""
    view = dict(context)
    view.update(fields)
    view.setdefault("id", ref.id)
    return view


def rule_data(
    rule: CompiledRule,
    *,
    now: datetime,
    ref: ObjectRef | None = None,
    fields: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    event: Event | None = None,
    item: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rule": {"id": rule.id, "description": rule.rule.description},
        "now": now,
        "__now__": now,
        "trigger": trigger or {},
    }
    if ref is not None:
        obj = object_view(ref, fields or {}, context or {})
        data.update(obj)  # conditions name fields directly: `dealstage: {eq: ...}`
        data["object"] = obj
        data[ref.type] = obj
        data["previous"] = previous or {}
    data["vars"] = rule.vars  # after the object's fields: a field named "vars" cannot hide it
    if event is not None:
        data["event"] = {
            "kind": event.kind,
            "field": event.field,
            "from": event.old,
            "to": event.new,
            "old": event.old,
            "new": event.new,
        }
    if item is not None:
        data["item"] = item
        for_each = getattr(rule.trigger, "for_each", None)
        if for_each is not None:
            data[for_each.object] = item
    if items is not None:
        data["items"] = items
    return data


def condition_holds(rule: CompiledRule, data: dict[str, Any]) -> bool:
    return rule.condition is None or rule.condition.test(data)


def _value_matches(rule: CompiledRule, field_name: str, expected: Any, actual: Any) -> bool:
    if expected is None:
        return True
    options = expected if isinstance(expected, list) else [expected]
    actual = rule.canon(field_name, actual)  # "Closed Won" and "closedwon" are one stage
    return any(rule.canon(field_name, o) == actual for o in options)


def event_matches(rule: CompiledRule, event: Event) -> bool:
    """Does the trigger of `rule` fire on `event` (before conditions)?"""
    trigger = rule.trigger
    if not rule.rule.enabled:
        return False
    if isinstance(trigger, CreatedTrigger):
        return event.kind == "created" and (event.ref.source, event.ref.type) == (
            trigger.source,
            trigger.object,
        )
    if not isinstance(trigger, ChangeTrigger) or event.kind != "changed":
        return False
    return (
        (event.ref.source, event.ref.type, event.field)
        == (trigger.source, trigger.object, trigger.field)
        and _value_matches(rule, trigger.field, trigger.from_, event.old)
        and _value_matches(rule, trigger.field, trigger.to, event.new)
    )


def plan_actions(
    rule: CompiledRule, data: dict[str, Any], key_parts: tuple[Any, ...], ref: ObjectRef | None
) -> list[PlannedAction]:
    """Render each action of `rule` with `data`. A rendering error becomes an action that
    carries the error, so the failure is recorded and visible instead of lost."""
    out = []
    guarantee = rule.rule.guarantee or "at_least_once"
    scope = RenderScope(data)  # one context for all the rule's templates (see RenderScope)
    for index, act in enumerate(rule.actions):
        key = make_key(rule.id, index, *key_parts)
        try:
            params = render_value(act.params, scope, rule.base_dir)
            error = None
        except TemplateProblem as exc:
            params, error = {}, str(exc)
        except Exception as exc:  # a bug or odd data must fail this action, not the ingest
            params, error = {}, f"template error: {type(exc).__name__}: {exc}"
        out.append(
            PlannedAction(key, rule.id, act.connector, act.action, params, ref, guarantee, error)
        )
    return out


class RuleSet:
    """All loaded rules, indexed for the lookups ingest makes on every change."""

    def __init__(self, rules: Iterable[CompiledRule], files: list[Path] | None = None) -> None:
        self.rules = list(rules)
        self.files = files or []
        self.by_id = {r.id: r for r in self.rules}
        self._watched: dict[tuple[str, str], set[str]] = {}
        for r in self.rules:
            t = r.trigger
            if isinstance(t, ChangeTrigger):
                self._watched.setdefault((t.source, t.object), set()).add(t.field)
            elif isinstance(t, DateTrigger):
                fld = t.entered.field if t.entered else t.date
                self._watched.setdefault((t.source, t.object), set()).add(str(fld))
            elif isinstance(t, CreatedTrigger):
                self._watched.setdefault((t.source, t.object), set())

    def watched_fields(self, source: str, object_type: str) -> set[str]:
        """Fields whose changes become events (the others only update the snapshot)."""
        return self._watched.get((source, object_type), set())

    def event_rules(self) -> list[CompiledRule]:
        return [r for r in self.rules if isinstance(r.trigger, ChangeTrigger | CreatedTrigger)]

    def date_rules(self) -> list[CompiledRule]:
        return [r for r in self.rules if isinstance(r.trigger, DateTrigger) and r.rule.enabled]

    def cron_rules(self) -> list[CompiledRule]:
        return [r for r in self.rules if isinstance(r.trigger, CronTrigger) and r.rule.enabled]

    def sources(self) -> set[str]:
        out = set()
        for r in self.rules:
            t = r.trigger
            if hasattr(t, "source"):
                out.add(t.source)
            for q in (getattr(t, "for_each", None), getattr(t, "collect", None)):
                if q is not None:
                    out.add(q.source)
            out.update(a.connector for a in r.actions)
        return out
