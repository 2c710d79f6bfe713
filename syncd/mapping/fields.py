"""The fields of each (source, object type) that the loaded rules read.

Triggers, conditions and templates (parsed: the attribute chains `deal.data_location`,
`object["x"]`, `item.fee`), so a connector fetches every field a rule uses and what
`syncd check` accepts runs in production with no extra config.

A template that uses an object whole (`deal | tojson`, `{% set d = deal %}`) may read any
field: it reads `WHOLE_OBJECT`, and a connector that leaves out what no rule reads (HubSpot's
associations) then reads everything.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes

from syncd.mapping.model import ChangeTrigger, CreatedTrigger, CronTrigger, DateTrigger
from syncd.mapping.rules import CompiledRule, RuleSet
from syncd.mapping.templates import ENV, TemplateProblem, walk_templates

Key = tuple[str, str]  # (source, object type)
_NOT_FIELDS = {"event", "now", "trigger", "rule", "previous", "items", "item", "object", "vars"}
WHOLE_OBJECT = "*"  # read by a template that uses the object as a whole
COLLECTED = "items"  # a cron rule's `collect`ed objects, as templates see them
# `deal.items()`, `deal.get(name)`: an object's own methods, which may read any field.
_METHODS = {"items", "keys", "values", "get"}


def _attribute_reads(source: str, roots: set[str]) -> set[str]:
    """Names read as `root.name` or `root["name"]` for any root in `roots`; `WHOLE_OBJECT`
    when a root is used otherwise (passed to a filter, assigned, indexed by a variable)."""
    try:
        tree = ENV.parse(source)
    except Exception:  # a syntax error is the loader's to report
        return set()
    found: set[str] = set()
    named: set[int] = set()  # the root names read by name above
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):  # what find_all was asked for
            continue
        base = node.node
        if not (isinstance(base, nodes.Name) and base.name in roots):
            continue
        if isinstance(node, nodes.Getattr):
            found.add(WHOLE_OBJECT if node.attr in _METHODS else node.attr)
            named.add(id(base))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add(node.arg.value)
            named.add(id(base))
    for name in tree.find_all(nodes.Name):  # `{% set deal = ... %}` stores: not a read
        loaded = isinstance(name, nodes.Name) and name.ctx == "load"
        if loaded and name.name in roots and id(name) not in named:
            found.add(WHOLE_OBJECT)
    return found


def _condition_fields(condition: Any, roots: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key in ("all", "any", "not", "and", "or"):
                for sub in value if isinstance(value, list) else [value]:
                    found |= _condition_fields(sub, roots)
                continue
            head, _, rest = str(key).partition(".")
            if rest and head in roots:
                found.add(rest.split(".")[0])
            elif head not in _NOT_FIELDS and head not in roots:
                found.add(head)
    elif isinstance(condition, list):
        for sub in condition:
            found |= _condition_fields(sub, roots)
    return found


def _rule_fields(rule: CompiledRule) -> dict[Key, set[str]]:
    out: dict[Key, set[str]] = {}
    trigger = rule.trigger
    # (source, object type, the names templates read it by, whether conditions name it)
    targets: list[tuple[str, str, set[str], bool]]
    if isinstance(trigger, CronTrigger):
        targets = [
            (q.source, q.object, {"item", q.object}, True)
            for q in (trigger.for_each,)
            if q is not None
        ]
        # `items` holds the collected objects, read under names of the template's choosing
        # (`{% for d in items %}`): any use of it counts as reading them whole (below).
        targets += [
            (q.source, q.object, {COLLECTED}, False) for q in (trigger.collect,) if q is not None
        ]
    else:
        roots = {"object", "previous", trigger.object}
        targets = [(trigger.source, trigger.object, roots, True)]
        direct = out.setdefault((trigger.source, trigger.object), set())
        if isinstance(trigger, ChangeTrigger):
            direct.add(trigger.field)
        elif isinstance(trigger, DateTrigger):
            direct.add(trigger.entered.field if trigger.entered else str(trigger.date))
        elif isinstance(trigger, CreatedTrigger):
            pass
    for source, obj, roots, conditions in targets:
        fields = out.setdefault((source, obj), set())
        if conditions:
            fields |= _condition_fields(rule.rule.if_ or {}, roots)
        for act in rule.actions:
            try:
                templates = walk_templates(act.params, rule.base_dir)
            except TemplateProblem:
                continue
            for _, text in templates:
                read = _attribute_reads(text, roots)
                if roots == {COLLECTED}:  # not the objects' field names: a list's
                    read = {WHOLE_OBJECT} if read else set()
                fields |= read
    for fields in out.values():
        fields.discard("id")
    return out


def referenced_fields(rules: RuleSet) -> dict[Key, set[str]]:
    out: dict[Key, set[str]] = {}
    for rule in rules.rules:
        for key, fields in _rule_fields(rule).items():
            out.setdefault(key, set()).update(fields)
    return out
