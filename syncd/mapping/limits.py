"""Bounds on one template render: time, output size and the operations that amplify.

A mapping file is trusted to say what to do, not to take the daemon down: `{{ 'a'*10**9 }}`
or nested loops would otherwise eat gigabytes or stall the poller that renders them. Every
check raises TemplateLimit, which planning turns into a dead action carrying the reason.

The time budget is cooperative: every loop step, call, attribute read, operator and filter
checks the deadline, so `{% for i in range(...) %}` nests cannot run past it.
"""

from __future__ import annotations

import functools
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.visitor import NodeTransformer

TIME_BUDGET_SECONDS = 1.0  # real templates take milliseconds; a bad one stalls ingest this long
MAX_OUTPUT_CHARS = 1_000_000  # one rendered value
MAX_VALUE_SIZE = 1_000_000  # chars or items of any value a template builds
MAX_RANGE = 10_000
MAX_WIDTH = 10_000  # a padding width or precision in a format or filter
MAX_INT_BITS = 10_000

ITER_GUARD = "syncd_iter_guard"
SIZE_GUARD = "syncd_size_guard"


class TemplateLimit(RuntimeError):
    """A template went past one of the bounds above."""


_state = threading.local()


def start_budget(seconds: float = TIME_BUDGET_SECONDS) -> None:
    _state.deadline = time.monotonic() + seconds


def check_time() -> None:
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimit(f"template ran longer than its {TIME_BUDGET_SECONDS:g} s budget")


def check_size(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_VALUE_SIZE:
        raise TemplateLimit(
            f"template built a value of {len(value)} chars/items (limit {MAX_VALUE_SIZE})"
        )
    return value


def bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimit(f"range of {len(rng)} items (limit {MAX_RANGE})")
    return rng


def bounded_concat(parts: Iterable[str]) -> str:
    """`environment.concat`: joins every buffered block, macro and capture."""
    pieces: list[str] = []
    total = 0
    for piece in parts:
        check_time()
        total += len(piece)
        if total > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"template output over {MAX_OUTPUT_CHARS} chars")
        pieces.append(piece)
    return "".join(pieces)


@pass_context
def iter_guard(_context: Any, iterable: Any) -> Iterator[Any]:
    """Wrapped around the iterable of every `for`: the deadline is checked at each step."""
    check_time()
    for item in iterable:
        check_time()
        yield item


@pass_context
def size_guard(_context: Any, value: Any) -> Any:
    """Wrapped around every `~` concatenation."""
    check_time()
    return check_size(value)


class GuardLoops(NodeTransformer):
    """Rewrites the parsed template: loops and `~` go through the guards above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, ITER_GUARD, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, SIZE_GUARD, [], [], None, None, lineno=node.lineno)


# -- operators --------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(fmt: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for part in (width, precision):
            if part == "*" or (part and int(part) > MAX_WIDTH):
                raise TemplateLimit(f"format width or precision over {MAX_WIDTH}")


def check_brace_format(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises its own error
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimit("nested format fields are not allowed in templates")
        if any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec)):
            raise TemplateLimit(f"format width or precision over {MAX_WIDTH}")


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before computing it."""
    check_time()
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if _sized(seq) and isinstance(times, int) and len(seq) * times > MAX_VALUE_SIZE:
                raise TemplateLimit(
                    f"repeating {len(seq)} chars/items {times} times (limit {MAX_VALUE_SIZE})"
                )
        if (
            _is_int(left)
            and _is_int(right)
            and (left.bit_length() + right.bit_length() > MAX_INT_BITS)
        ):
            raise TemplateLimit(f"number over {MAX_INT_BITS} bits")
    elif operator == "**":
        if (
            _is_int(left)
            and _is_int(right)
            and right > 0
            and abs(left) > 1
            and (right * abs(left).bit_length() > MAX_INT_BITS)
        ):
            raise TemplateLimit(f"number over {MAX_INT_BITS} bits")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- calls and filters ------------------------------------------------------------------

_PADDING_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Methods of strings that can build a huge value from small arguments; the arguments
    to call with (a generator given to join() is read once, here)."""
    check_time()
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return args
    if name in _PADDING_METHODS:
        for value in (*args, *kwargs.values()):
            if _is_int(value) and value > MAX_WIDTH:
                raise TemplateLimit(f"{name}() width over {MAX_WIDTH}")
    elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[0], args[1]
        grows = max(0, len(new) - len(old)) * (owner.count(old) if old else len(owner) + 1)
        if len(owner) + grows > MAX_VALUE_SIZE:
            raise TemplateLimit(f"replace() would build over {MAX_VALUE_SIZE} chars")
    elif name == "join" and args:
        items = list(args[0])
        if sum(len(i) for i in items if isinstance(i, str)) + len(owner) * len(items) > (
            MAX_VALUE_SIZE
        ):
            raise TemplateLimit(f"join() would build over {MAX_VALUE_SIZE} chars")
        return (items, *args[1:])
    return args


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks the deadline and its arguments first and its result after."""

    @functools.wraps(func)  # keeps jinja's pass_context/pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if name in ("center", "indent", "wordwrap", "batch", "slice", "truncate"):
            for value in (*args[1:], *kwargs.values()):
                if _is_int(value) and value > MAX_WIDTH:
                    raise TemplateLimit(f"{name} filter argument over {MAX_WIDTH}")
        if name == "format":
            fmt = next((a for a in args if isinstance(a, str)), "")
            check_percent_format(fmt)
        if name == "join":
            args = _materialized_join_args(args)
        return check_size(func(*args, **kwargs))

    return guarded


def _materialized_join_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """`join` filter: (eval_ctx, value, d='', attribute=None); bound the sum first."""
    if len(args) < 2:
        return args
    items = list(args[1])
    sep = args[2] if len(args) > 2 and isinstance(args[2], str) else ""
    if sum(len(str(i)) for i in items) + len(sep) * len(items) > MAX_VALUE_SIZE:
        raise TemplateLimit(f"join would build over {MAX_VALUE_SIZE} chars")
    return (args[0], items, *args[2:])
