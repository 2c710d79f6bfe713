"""Loading mapping files: YAML with line numbers, then every check, every problem at once.

A problem names the file, the line where the parser knows it, the rule id and the field, so
ops can fix a file without guessing:

    mappings/sales.yaml:14: rule new-hub: do.0.github.create_issue.labels: Input should be
    a valid list
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from syncd import connector as registry
from syncd.mapping.conditions import ConditionError, compile_condition
from syncd.mapping.model import ChangeTrigger, CronTrigger, DateTrigger, MappingFile, Rule
from syncd.mapping.problems import Problem
from syncd.mapping.rules import CompiledAction, CompiledRule, RuleSet, template_roots
from syncd.mapping.safe_yaml import YamlLimit, load_bounded, read_mapping_text
from syncd.mapping.templates import TemplateProblem, undeclared_names, walk_templates

TRIGGER_TAGS = {"change", "created", "date", "cron"}
AliasProvider = Callable[[str, str, str], dict[str, str]]


class MappingError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def mapping_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest part of `loc` that exists in the YAML tree."""
    line = None
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (AttributeError, KeyError, TypeError):
            break
    return line


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for i, part in enumerate(loc):
        # pydantic adds the union's tag after "when"; it is not in the file
        if i > 0 and loc[i - 1] == "when" and part in TRIGGER_TAGS:
            continue
        out.append(part)
    return tuple(out)


def _fmt(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


class _FileChecker:
    def __init__(
        self, path: Path, aliases: AliasProvider | None, overrides: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        self.overrides = overrides or {}
        self.name = str(path)
        self.aliases = aliases
        self.problems: list[Problem] = []
        self.tree: Any = None
        self.valid: list[Rule | None] = []
        self.vars: dict[str, Any] = {}
        self.file_vars: dict[str, Any] = {}

    def problem(self, loc: tuple[Any, ...], message: str, rule_id: str | None = None) -> None:
        self.problems.append(
            Problem(self.name, _line_of(self.tree, loc), rule_id, _fmt(loc[2:]), message)
        )

    def load(self) -> MappingFile | None:
        try:
            self.tree = load_bounded(read_mapping_text(self.path))
        except YamlLimit as exc:
            self.problems.append(Problem(self.name, None, None, "", f"refused: {exc}"))
            return None
        except OSError as exc:
            self.problems.append(Problem(self.name, None, None, "", f"cannot read: {exc.strerror}"))
            return None
        except MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            self.problems.append(Problem(self.name, line, None, "", f"YAML syntax: {exc.problem}"))
            return None
        if self.tree is None:
            return MappingFile()
        plain = _plain(self.tree)
        if (
            not isinstance(plain, dict)
            or set(plain) - {"rules", "vars"}
            or not isinstance(plain.get("rules", []), list)
        ):
            self.problems.append(
                Problem(
                    self.name,
                    1,
                    None,
                    "",
                    "a mapping file is a table with the key `rules:`, "
                    "holding a list of rules (and optionally `vars:`, a table of values)",
                )
            )
            return None
        if not isinstance(plain.get("vars", {}), dict):
            self.problems.append(
                Problem(
                    self.name,
                    _line_of(self.tree, ("vars",)),
                    None,
                    "vars",
                    "`vars:` is a table of names and values (vars.<name> in rules)",
                )
            )
            return None
        self.file_vars = plain.get("vars") or {}
        self.vars = {
            name: self.overrides.get(name, value) for name, value in self.file_vars.items()
        }
        # Each rule on its own, so one bad rule does not hide the problems of the others.
        rules: list[Rule | None] = []
        for index, raw in enumerate(plain.get("rules", [])):
            try:
                rules.append(Rule.model_validate(raw))
            except ValidationError as exc:
                rules.append(None)
                for err in exc.errors(include_url=False):
                    loc = _clean_loc(("rules", index, *err["loc"]))
                    self.problem(loc, err["msg"], self._rule_id(loc))
        self.valid = rules
        return MappingFile.model_construct(rules=[r for r in rules if r is not None])

    def _rule_id(self, loc: tuple[Any, ...]) -> str | None:
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            try:
                return str(self.tree["rules"][loc[1]].get("id"))
            except (KeyError, IndexError, TypeError, AttributeError):
                return None
        return None

    def compile_rule(self, index: int, rule: Rule) -> CompiledRule | None:
        base: tuple[Any, ...] = ("rules", index)
        before = len(self.problems)
        trigger = rule.when
        field_aliases: dict[str, dict[str, str]] = {}
        for where, source in _trigger_sources(trigger):
            self._check_source(base + where, rule.id, source)
        if self.aliases and not isinstance(trigger, CronTrigger):  # cron: no field aliased
            for name in _aliased_fields(trigger):
                found = self.aliases(trigger.source, trigger.object, name)
                if found:
                    field_aliases[name] = found
        condition = None
        if rule.if_ is not None:
            try:
                condition = compile_condition(rule.if_, field_aliases)
            except ConditionError as exc:
                self.problem(base + exc.path, exc.message, rule.id)
        actions = [
            a
            for i, call in enumerate(rule.do)
            if (a := self._compile_action(base + ("do", i), rule, call)) is not None
        ]
        if len(self.problems) > before:
            return None
        return CompiledRule(
            rule=rule,
            file=self.name,
            base_dir=self.path.parent,
            condition=condition,
            actions=actions,
            aliases=field_aliases,
            vars=self.vars,
            file_vars=self.file_vars,
        )

    def _check_source(self, loc: tuple[Any, ...], rule_id: str, source: str) -> None:
        try:
            registry.load_class(source)
        except registry.UnknownConnector as exc:
            self.problem(loc, str(exc), rule_id)

    def _compile_action(
        self, loc: tuple[Any, ...], rule: Rule, call: dict[str, Any]
    ) -> CompiledAction | None:
        if len(call) != 1:
            self.problem(loc, "each action is one `connector.action: {params}` entry", rule.id)
            return None
        ((name, params),) = call.items()
        loc = loc + (name,)
        if "." not in name:
            self.problem(loc, f"{name!r}: write actions as connector.action", rule.id)
            return None
        conn_name, action_name = name.split(".", 1)
        try:
            cls = registry.load_class(conn_name)
        except registry.UnknownConnector as exc:
            self.problem(loc, str(exc), rule.id)
            return None
        spec = cls.actions.get(action_name)
        if spec is None:
            known = ", ".join(sorted(cls.actions)) or "none"
            self.problem(loc, f"unknown action {name!r} (known: {known})", rule.id)
            return None
        params = params or {}
        if not isinstance(params, dict):
            self.problem(loc, "parameters must be a table", rule.id)
            return None
        self._check_params(loc, rule, spec.params, params)
        self._check_templates(loc, rule, params)
        return CompiledAction(connector=conn_name, action=action_name, params=params)

    def _check_params(self, loc: tuple[Any, ...], rule: Rule, model: Any, params: dict) -> None:
        try:
            model.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                value = err.get("input")
                # A template renders to the right type at run time; its type is checked then.
                if isinstance(value, str) and ("{{" in value or "{%" in value):
                    continue
                if isinstance(value, dict) and set(value) == {"template"}:
                    continue
                self.problem(loc + tuple(err["loc"]), err["msg"], rule.id)

    def _check_templates(self, loc: tuple[Any, ...], rule: Rule, params: dict) -> None:
        allowed = template_roots(rule)
        try:
            sources = walk_templates(params, self.path.parent)
        except TemplateProblem as exc:
            self.problem(loc, str(exc), rule.id)
            return
        for path, source in sources:
            try:
                names = undeclared_names(source)
            except TemplateProblem as exc:
                self.problem(loc + path, str(exc), rule.id)
                continue
            unknown = sorted(names - allowed)
            if unknown:
                self.problem(
                    loc + path,
                    f"undefined name(s) in template: {', '.join(unknown)} "
                    f"(available: {', '.join(sorted(allowed))})",
                    rule.id,
                )


def _aliased_fields(trigger: Any) -> list[str]:
    """Fields of a trigger whose values may be written by name (a stage label)."""
    if isinstance(trigger, ChangeTrigger):
        return [trigger.field]
    if isinstance(trigger, DateTrigger) and trigger.entered is not None:
        return [trigger.entered.field]
    return []


def _trigger_sources(trigger: Any) -> list[tuple[tuple[str, ...], str]]:
    """Every connector a trigger reads from, with where it is named in the rule."""
    out: list[tuple[tuple[str, ...], str]] = []
    if getattr(trigger, "source", None):
        out.append((("when", "source"), trigger.source))
    for key in ("for_each", "collect"):
        query = getattr(trigger, key, None)
        if query is not None:
            out.append((("when", key, "source"), query.source))
    return out


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_rules(
    paths: Iterable[Path],
    *,
    aliases: AliasProvider | None = None,
    run_examples: bool = True,
    vars: dict[str, Any] | None = None,
) -> RuleSet:
    """Load and check every mapping file; raise MappingError listing every problem.
    `vars` (the config's [syncd] vars) replace the same names in the files' `vars:`."""
    problems: list[Problem] = []
    compiled: list[CompiledRule] = []
    seen: dict[str, str] = {}
    declared: set[str] = set()
    files = mapping_files(paths)
    for path in files:
        checker = _FileChecker(path, aliases, vars)
        mapping = checker.load()
        declared |= set(checker.file_vars)
        if mapping is not None:
            for index, rule in enumerate(checker.valid):
                if rule is None:
                    continue
                if rule.id in seen:
                    checker.problem(
                        ("rules", index, "id"),
                        f"duplicate rule id (also in {seen[rule.id]})",
                        rule.id,
                    )
                    continue
                seen[rule.id] = checker.name
                result = checker.compile_rule(index, rule)
                if result is not None:
                    result.line = _line_of(checker.tree, ("rules", index))
                    compiled.append(result)
        problems.extend(checker.problems)
    for name in sorted(set(vars or {}) - declared):  # a misspelt switch must not be ignored
        problems.append(
            Problem(
                "[syncd] vars",
                None,
                None,
                name,
                f"no mapping file declares `{name}` under vars: (declared: "
                f"{', '.join(sorted(declared)) or 'none'})",
            )
        )
    ruleset = RuleSet(compiled, files=files)
    if run_examples:
        from syncd.mapping.planner import run_examples as check_examples

        problems.extend(check_examples(ruleset))
    if problems:
        raise MappingError(problems)
    return ruleset
