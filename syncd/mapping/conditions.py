"""Conditions (`if:` in a rule): a fixed operator table, compiled once when rules load.

    if:
      amount: {gte: 1000}            # operators on a field
      dealstage: Closed Won          # a bare value means eq
      any:
        - company.country: {in: [FR, BE]}
        - not: {tags: {contains: vip}}

Field paths are dotted and resolved in the rule's data (the object's fields, then `event.*`,
`previous.*`, context such as `company.*`). A field with value aliases (a HubSpot stage
label) compares equal under its label or its id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from syncd.mapping.durations import parse_offset

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


@dataclass
class Compiled:
    test: Predicate
    describe: str  # "amount gte 1000", for `syncd explain`


def lookup(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


# What `gt`/`gte`/`lt`/`lte` read as a number in text: an optional sign and currency symbol,
# digits with "," as the thousands separator, an optional "." decimal part ("1,500", "$900",
# "-1,250.50", "€ 80"). Other text is not guessed at (is "1.500" fifteen hundred or 1.5?).
_NUMBER_TEXT = re.compile(r"^([-+]?)\s*[$€£]?\s*([-+]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?$")


class ConditionValueError(ValueError):
    """A field's value cannot be compared as the rule asks (text where a number is needed).
    It fails the rule for that object, visibly, instead of silently not firing."""


def _as_number(value: Any) -> float | None:
    """A number from a number, or from text in the documented forms; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    found = _NUMBER_TEXT.match(value.strip())
    if found is None:
        try:
            number = float(value)  # "1e3", " 12 "
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    sign = "-" if "-" in (found[1] + found[2]) else ""
    return float(sign + found[3].replace(",", "") + (found[4] or ""))


def as_datetime(value: Any, now: datetime | None = None) -> datetime | None:
    """ISO dates/datetimes, epoch milliseconds, or "now", "now-30d", "now+7d"."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("now"):
        base = now or datetime.now(UTC)
        rest = text[3:].strip()
        return base + parse_offset(rest) if rest else base
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, expected: Any) -> bool:
        a, b = _as_number(actual), _as_number(expected)
        if b is not None and a is None:
            if actual is None or actual == "":
                return False  # no value: the comparison does not hold
            raise ConditionValueError(f"{actual!r} is not a number (compared {op} {expected!r})")
        if a is None or b is None:
            if not isinstance(actual, str) or not isinstance(expected, str):
                return False
            a, b = actual, expected  # type: ignore[assignment]
        both: Any = (a, b)  # numbers or datetimes by now; mypy cannot follow the branches
        left, right = both
        return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[
            op
        ]

    return compare


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return str(expected) in actual
    if isinstance(actual, list | tuple | set):
        return expected in actual
    return False


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "contains": _contains,
    "regex": lambda a, b: isinstance(a, str) and re.search(str(b), a) is not None,
    "gt": _compare("gt"),
    "gte": _compare("gte"),
    "lt": _compare("lt"),
    "lte": _compare("lte"),
    "exists": lambda a, b: (a is not _MISSING and a is not None and a != "") == bool(b),
    "before": lambda a, b: a is not None and b is not None and a < b,
    "after": lambda a, b: a is not None and b is not None and a > b,
}
LOGICAL = ("all", "any", "not")


class ConditionError(ValueError):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def compile_condition(
    raw: Any,
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    path: tuple[str | int, ...] = ("if",),
) -> Compiled:
    """Compile `raw` or raise ConditionError naming the path of the first bad part.

    Use `condition_errors` to collect every problem at once."""
    aliases = aliases or {}
    if not isinstance(raw, Mapping):
        raise ConditionError(path, "a condition is a table of field: test (or all/any/not)")
    parts: list[Compiled] = []
    for key, value in raw.items():
        key = str(key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(path + (key,), f"'{key}' takes a non-empty list of conditions")
            subs = [compile_condition(v, aliases, path + (key, i)) for i, v in enumerate(value)]
            parts.append(_logical(key, subs))
        elif key == "not":
            sub = compile_condition(value, aliases, path + (key,))
            parts.append(_negated(sub))
        else:
            parts.append(_field_test(key, value, aliases.get(key, {}), path + (key,)))
    return _logical("all", parts)


def _negated(sub: Compiled) -> Compiled:
    return Compiled(lambda d: not sub.test(d), f"not ({sub.describe})")


def _logical(kind: str, subs: list[Compiled]) -> Compiled:
    if kind == "all":
        text = " and ".join(s.describe for s in subs)
        return Compiled(lambda d: all(s.test(d) for s in subs), text)
    return Compiled(lambda d: any(s.test(d) for s in subs), " or ".join(s.describe for s in subs))


def _field_test(
    field: str, spec: Any, field_aliases: Mapping[str, str], path: tuple[str | int, ...]
) -> Compiled:
    tests = spec if isinstance(spec, Mapping) else {"eq": spec}
    compiled: list[Compiled] = []
    for op, expected in tests.items():
        op = str(op)
        if op not in OPERATORS:
            raise ConditionError(
                path + (op,), f"unknown operator {op!r} (known: {', '.join(OPERATORS)})"
            )
        if op in ("in", "not_in") and not isinstance(expected, list):
            raise ConditionError(path + (op,), f"'{op}' takes a list")
        if op == "regex":
            try:
                re.compile(str(expected))
            except re.error as exc:
                raise ConditionError(path + (op,), f"bad regex: {exc}") from None
        if op in ("before", "after") and as_datetime(expected) is None:
            raise ConditionError(path + (op,), f"'{op}' takes a date, datetime or now±N")
        compiled.append(_one_test(field, op, expected, field_aliases))
    return _logical("all", compiled)


def _one_test(field: str, op: str, expected: Any, field_aliases: Mapping[str, str]) -> Compiled:
    fn = OPERATORS[op]

    def canon(value: Any) -> Any:
        return field_aliases.get(value, value) if isinstance(value, str) else value

    if field_aliases and op in ("eq", "ne"):
        expected = canon(expected)
    elif field_aliases and op in ("in", "not_in"):
        expected = [canon(v) for v in expected]

    def test(data: Mapping[str, Any]) -> bool:
        actual = lookup(data, field)
        if field_aliases and op in ("eq", "ne", "in", "not_in"):
            actual = canon(actual)
        if op in ("before", "after"):
            now = data.get("__now__")
            return fn(as_datetime(actual, now), as_datetime(expected, now))
        if op == "exists":
            return fn(actual, expected)
        if actual is _MISSING:
            return op in ("ne", "not_in")
        return fn(actual, expected)

    return Compiled(test, f"{field} {op} {expected!r}")
