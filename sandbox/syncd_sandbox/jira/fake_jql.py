"""The subset of JQL the fake Jira understands: enough for syncd's polls, finders and queries.

Grammar (case-insensitive keywords):
    query  := [expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    expr   := term {OR term};  term := factor {AND factor}
    factor := NOT factor | "(" expr ")" | field op value
    op     := = | != | > | >= | < | <= | ~ | IN | NOT IN | IS | IS NOT
    value  := "string" | word | EMPTY | "(" value {, value} ")"

Dates ("yyyy-MM-dd HH:mm" or "yyyy-MM-dd") are read in the searching user's time zone, as
Jira does; a query with no restriction is refused like Jira Cloud refuses unbounded queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|>|<|~|\(|\)|,)"""
    r"""|(?P<word>[^\s=!<>~(),"']+))"""
)

# field name in JQL -> the FakeIssue attribute it reads; lists compare by membership
FIELDS = {
    "labels": "labels",
    "issuetype": "issuetype",
    "type": "issuetype",
    "status": "status",
    "statuscategory": "status_category",
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "issue": "key",
    "parent": "parent",
    "assignee": "assignee",
    "summary": "summary",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
}
DATE_FIELDS = {"updated", "created"}


class JqlError(ValueError):
    """Answered as 400 with the message in `errorMessages`, like Jira."""


@dataclass
class ParsedQuery:
    predicate: Callable[[Any], bool] | None
    order_by: list[tuple[str, bool]]  # (attribute, descending)
    # Issue keys named in `key = ..` / `key in (..)`: Jira refuses the query (400) when one
    # of them does not exist.
    keys: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, text: str, tz: ZoneInfo) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.tz = tz
        self.keys: list[str] = []

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        text = text.rstrip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise JqlError(f"Error in the JQL Query: unexpected character at {pos}.")
            kind = match.lastgroup or "word"
            value = match.group(kind)
            if kind == "str":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            tokens.append((kind, value))
            pos = match.end()
        return tokens

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def word_is(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token[0] == "word" and token[1].lower() == word

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        self.pos += 1
        return token

    def expect_op(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise JqlError(f"Error in the JQL Query: expecting '{op}' but got '{value}'.")

    # -- grammar -----------------------------------------------------------------------

    def parse(self) -> ParsedQuery:
        predicate = None
        if self.peek() is not None and not self.word_is("order"):
            predicate = self.expr()
        order_by: list[tuple[str, bool]] = []
        if self.word_is("order"):
            self.take()
            if not self.word_is("by"):
                raise JqlError("Error in the JQL Query: expecting 'by' after 'order'.")
            self.take()
            while True:
                name = self.take()[1].lower()
                if name not in FIELDS:
                    raise JqlError(f"Not able to sort using field '{name}'.")
                descending = False
                if self.word_is("asc") or self.word_is("desc"):
                    descending = self.take()[1].lower() == "desc"
                order_by.append((FIELDS[name], descending))
                if self.peek() == ("op", ","):
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise JqlError(f"Error in the JQL Query: unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        return ParsedQuery(predicate, order_by, self.keys)

    def expr(self) -> Callable[[Any], bool]:
        terms = [self.term()]
        while self.word_is("or"):
            self.take()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda i: any(t(i) for t in terms))

    def term(self) -> Callable[[Any], bool]:
        factors = [self.factor()]
        while self.word_is("and"):
            self.take()
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else (lambda i: all(f(i) for f in factors))

    def factor(self) -> Callable[[Any], bool]:
        if self.word_is("not"):
            self.take()
            inner = self.factor()
            return lambda i: not inner(i)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.expr()
            self.expect_op(")")
            return inner
        return self.clause()

    def clause(self) -> Callable[[Any], bool]:
        name = self.take()[1]
        attribute = FIELDS.get(name.lower())
        if attribute is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        op = self.operator()
        values = self.values(op)
        if attribute in DATE_FIELDS:
            return self._date_clause(attribute, op, values)
        if attribute == "key" and op in ("=", "in"):
            self.keys.extend(v for v in values if v is not None)
        return _compare(attribute, op, values)

    def operator(self) -> str:
        kind, value = self.take()
        if kind == "op" and value not in "(),":
            return value
        lowered = value.lower()
        if lowered == "in":
            return "in"
        if lowered == "not" and self.word_is("in"):
            self.take()
            return "not in"
        if lowered == "is":
            if self.word_is("not"):
                self.take()
                return "is not"
            return "is"
        raise JqlError(f"Error in the JQL Query: '{value}' is not a valid operator.")

    def values(self, op: str) -> list[str | None]:
        if op in ("in", "not in"):
            self.expect_op("(")
            out = [self.single()]
            while self.peek() == ("op", ","):
                self.take()
                out.append(self.single())
            self.expect_op(")")
            return out
        return [self.single()]

    def single(self) -> str | None:
        kind, value = self.take()
        if kind == "op":
            raise JqlError(f"Error in the JQL Query: expecting a value but got '{value}'.")
        if kind == "word" and value.lower() in ("empty", "null"):
            return None
        return value

    def _date_clause(
        self, attribute: str, op: str, values: list[str | None]
    ) -> Callable[[Any], bool]:
        if op not in ("=", "!=", ">", ">=", "<", "<=") or values[0] is None:
            raise JqlError(f"The operator '{op}' is not supported by the '{attribute}' field.")
        limit = parse_jql_date(values[0], self.tz)
        compare = {
            "=": lambda a: a == limit,
            "!=": lambda a: a != limit,
            ">": lambda a: a > limit,
            ">=": lambda a: a >= limit,
            "<": lambda a: a < limit,
            "<=": lambda a: a <= limit,
        }[op]
        return lambda issue: compare(getattr(issue, attribute))


def _normal(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(attribute: str, op: str, values: list[str | None]) -> Callable[[Any], bool]:
    wanted = [_normal(v) for v in values]

    def current(issue: Any) -> list[Any]:
        value = getattr(issue, attribute)
        items = value if isinstance(value, list) else ([] if value is None else [value])
        return [_normal(v) for v in items]

    if op in ("=", "in"):
        return lambda i: (
            any(v in current(i) for v in wanted if v is not None)
            or (None in wanted and not current(i))
        )
    if op in ("!=", "not in"):
        return lambda i: bool(current(i)) and not any(v in current(i) for v in wanted)
    if op == "is":
        return lambda i: not current(i)
    if op == "is not":
        return lambda i: bool(current(i))
    if op == "~":
        return lambda i: any(str(wanted[0]) in str(v) for v in current(i))
    raise JqlError(f"The operator '{op}' is not supported by the '{attribute}' field.")


def parse_jql_date(text: str, tz: ZoneInfo) -> int:
    """A JQL date literal in the user's time zone, as epoch milliseconds."""
    for pattern in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            moment = datetime.strptime(text, pattern).replace(tzinfo=tz)
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    if text.isdigit():
        return int(text)
    raise JqlError(
        f"Date value '{text}' for field is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'."
    )


def parse_jql(text: str, tz: ZoneInfo) -> ParsedQuery:
    parsed = _Parser(text, tz).parse()
    if parsed.predicate is None:
        raise JqlError(
            "Unbounded JQL queries are not allowed here. Please add a search restriction "
            "to your query."
        )
    return parsed
