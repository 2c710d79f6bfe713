"""A small evaluator of Airtable formulas, for the fake's `filterByFormula`.

It covers what syncd sends (and what ops write for `for_each` queries): field references
`{Name}`, string / number literals, comparisons (`=`, `!=`, `<`, `>`, `<=`, `>=`), `&`, and
the functions AND, OR, NOT, IF, IS_AFTER, IS_BEFORE, LAST_MODIFIED_TIME, CREATED_TIME,
DATETIME_PARSE, RECORD_ID, TRUE, FALSE, BLANK. Anything else is a `FormulaError`, which the
fake answers with 422 INVALID_FILTER_BY_FORMULA like Airtable does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.clock import from_ms


class FormulaError(ValueError):
    pass


@dataclass
class FormulaRecord:
    """What a formula can see of a record."""

    id: str
    fields: dict[str, Any]
    created_ms: int
    modified_ms: int


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<field>\{[^}]*\})
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|=|<|>|&|\(|\)|,)
    | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
    )""",
    re.VERBOSE,
)

Node = Callable[[FormulaRecord], Any]


def parse_datetime(value: Any) -> datetime:
    """A formula's date operand: a datetime, or an ISO 8601 string."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FormulaError(f"not a date: {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise FormulaError(f"not a date: {value!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FormulaError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _scalar(value: Any) -> Any:
    """Airtable compares arrays (multiple selects, links) as their comma-joined text."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return ""
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _scalar(left), _scalar(right)
    if isinstance(left, datetime) or isinstance(right, datetime):
        left, right = parse_datetime(left), parse_datetime(right)
    elif isinstance(left, bool) or isinstance(right, bool):
        left, right = bool(left), bool(right)
    elif isinstance(left, int | float) and isinstance(right, int | float):
        pass
    elif isinstance(left, int | float) or isinstance(right, int | float):
        try:
            left, right = float(left or 0), float(right or 0)
        except (TypeError, ValueError):
            left, right = str(left), str(right)
    else:
        left, right = str(left), str(right)
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        return bool(
            {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
        )
    except TypeError as exc:
        raise FormulaError(f"cannot compare {left!r} {op} {right!r}") from exc


def _truthy(value: Any) -> bool:
    value = _scalar(value)
    return bool(value) and value != "0"


_FUNCTIONS: dict[str, Callable[[FormulaRecord, list[Any]], Any]] = {
    "AND": lambda r, a: all(_truthy(v) for v in a),
    "OR": lambda r, a: any(_truthy(v) for v in a),
    "NOT": lambda r, a: not _truthy(a[0]),
    "IF": lambda r, a: a[1] if _truthy(a[0]) else (a[2] if len(a) > 2 else ""),
    "IS_AFTER": lambda r, a: parse_datetime(a[0]) > parse_datetime(a[1]),
    "IS_BEFORE": lambda r, a: parse_datetime(a[0]) < parse_datetime(a[1]),
    "LAST_MODIFIED_TIME": lambda r, a: from_ms(r.modified_ms),
    "CREATED_TIME": lambda r, a: from_ms(r.created_ms),
    "DATETIME_PARSE": lambda r, a: parse_datetime(a[0]),
    "RECORD_ID": lambda r, a: r.id,
    "TRUE": lambda r, a: True,
    "FALSE": lambda r, a: False,
    "BLANK": lambda r, a: "",
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise FormulaError(f"expected {value or 'more'} at token {self.pos}")
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.comparison()
        if self.peek() is not None:
            raise FormulaError(f"unexpected {self.peek()!r}")
        return node

    def comparison(self) -> Node:
        left = self.concat()
        token = self.peek()
        if token and token[0] == "op" and token[1] in {"=", "!=", "<", ">", "<=", ">="}:
            op = self.take()[1]
            right = self.concat()
            return lambda r: _compare(op, left(r), right(r))
        return left

    def concat(self) -> Node:
        parts = [self.primary()]
        while (token := self.peek()) and token == ("op", "&"):
            self.take()
            parts.append(self.primary())
        if len(parts) == 1:
            return parts[0]
        return lambda r: "".join(str(_scalar(p(r))) for p in parts)

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "field":
            name = text[1:-1]
            return lambda r: r.fields.get(name)
        if kind == "string":
            value = _unquote(text)
            return lambda r: value
        if kind == "number":
            number = float(text) if "." in text else int(text)
            return lambda r: number
        if (kind, text) == ("op", "("):
            inner = self.comparison()
            self.take(")")
            return inner
        if kind == "name":
            return self.call(text.upper())
        raise FormulaError(f"unexpected {text!r}")

    def call(self, name: str) -> Node:
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise FormulaError(f"unknown function {name}")
        self.take("(")
        args: list[Node] = []
        if self.peek() != ("op", ")"):
            args.append(self.comparison())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.comparison())
        self.take(")")
        return lambda r: fn(r, [a(r) for a in args])


def compile_formula(text: str) -> Node:
    """Parse a formula once; the result evaluates it against a record. Empty: match all."""
    if not text.strip():
        return lambda r: True
    return _Parser(text).parse()


def matches(node: Node, record: FormulaRecord) -> bool:
    try:
        return _truthy(node(record))
    except IndexError as exc:
        raise FormulaError("wrong number of arguments") from exc
