"""Templates in mapping files: Jinja2 in an immutable sandbox with strict undefined names.

CRM data is untrusted: the sandbox stops a deal name like `{{ ''.__class__ }}` from reaching
Python internals (and data is never rendered as a template anyway: only mapping files are),
and StrictUndefined turns a misspelt field into an error instead of an empty string in an
issue that engineers will read. Every render is bounded in time and size (`limits.py`), and
`{template: file}` reads only files inside the mapping file's folder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syncd.mapping import limits
from syncd.mapping.amounts import amount
from syncd.mapping.conditions import as_datetime

MAX_TEMPLATE_FILE_BYTES = 256 * 1024


def _date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    moment = as_datetime(value)
    return moment.strftime(fmt) if moment else ""


def _add_days(value: Any, days: int) -> str:
    """The date `days` after a date or datetime, as YYYY-MM-DD (a task's due date)."""
    moment = as_datetime(value)
    return (moment + timedelta(days=int(days))).date().isoformat() if moment else ""


def _no_mentions(value: Any) -> str:
    """Keep CRM text from pinging people on GitHub: "@team" -> "@\u200dteam"."""
    return str(value).replace("@", "@\u200d")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus the bounds of `syncd.mapping.limits` on every operation."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        # Jinja's step from parsed tree to Python code (3.x): loops and `~` get their guards.
        source = limits.GuardLoops().visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return limits.check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = limits.check_call(__obj, args, kwargs)
        return limits.check_size(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        limits.check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        limits.check_time()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # "...".format / format_map: check the widths it asks for
            limits.check_brace_format(str(value.__self__))
        return wrapped


def make_environment() -> ImmutableSandboxedEnvironment:
    env = BoundedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = _date
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["no_mentions"] = _no_mentions
    env.filters["add_days"] = _add_days
    env.filters["amount"] = amount
    env.globals["utcnow"] = lambda: datetime.now(UTC)
    env.globals["range"] = limits.bounded_range
    env.globals.pop("lipsum", None)  # lipsum(n=10**9): text nobody needs, of any size
    env.filters = {name: limits.guard_filter(name, f) for name, f in env.filters.items()}
    env.filters[limits.ITER_GUARD] = limits.iter_guard
    env.filters[limits.SIZE_GUARD] = limits.size_guard
    env.concat = limits.bounded_concat  # type: ignore[method-assign]
    return env


ENV = make_environment()


class TemplateProblem(ValueError):
    pass


def undeclared_names(source: str) -> set[str]:
    """Top-level names a template reads (raises TemplateProblem on a syntax error)."""
    try:
        tree = ENV.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        raise TemplateProblem(f"template syntax error{where}: {exc.message}") from None
    names = meta.find_undeclared_variables(tree)
    return {n for n in names if n not in ENV.globals}


# Compiled templates by source: a rule's templates are compiled the first time they render
# after a (re)load and reused by every render after it (compiling costs far more than
# rendering). Keyed by source, so an edited rule compiles its new text; bounded, so sources
# of rules long gone do not pile up.
MAX_COMPILED = 2048
_compiled: dict[str, Template] = {}
_compiled_lock = threading.Lock()
compilations = 0  # how many templates were compiled (tests check that renders reuse them)


def compiled(source: str) -> Template:
    """The compiled template for `source`, compiled once."""
    global compilations
    found = _compiled.get(source)
    if found is not None:
        return found
    template = ENV.from_string(source)
    # Its globals (the environment's, behind an empty ChainMap layer) as one plain dict:
    # each render reads them whole (RenderScope, Jinja's Context), a ChainMap slowly.
    template.globals = dict(template.globals)
    with _compiled_lock:
        compilations += 1
        if len(_compiled) >= MAX_COMPILED:
            _compiled.pop(next(iter(_compiled)))  # the oldest entry
        _compiled[source] = template
    return template


def has_template(value: str) -> bool:
    return "{{" in value or "{%" in value


class RenderScope:
    """The variables every template of one rendering reads: `data` over the environment's
    globals. Jinja's `Template.generate` copies `data` twice for each template it renders
    (issue 17: a fifth of the planner's time); this builds the merged dict once, on the
    first render, and lends it to each template's context. Sharing is safe because no
    render can change it: the sandbox is immutable, and `{% set %}` writes the render's own
    context (`Context.vars`), never this dict (Jinja's `shared=True`)."""

    __slots__ = ("_variables", "data")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._variables: dict[str, Any] | None = None

    def context(self, template: Template) -> Context:
        if self._variables is None:
            # What Jinja builds per render: dict(globals, **data), errors included (a key
            # that is not a string is the render's TypeError, as before).
            self._variables = dict(template.globals, **self.data)
        return template.new_context(self._variables, shared=True)


def _generate(template: Template, scope: RenderScope) -> Iterator[str]:
    """`Template.generate` on a shared scope: the same chunks and the same exceptions."""
    try:
        yield from template.root_render_func(scope.context(template))
    except Exception:
        yield template.environment.handle_exception()


def render_string(source: str, data: dict[str, Any] | RenderScope) -> str:
    """Render within the time and size bounds; any failure is a TemplateProblem."""
    scope = data if isinstance(data, RenderScope) else RenderScope(data)
    limits.start_budget()
    try:
        out: list[str] = []
        size = 0
        for chunk in _generate(compiled(source), scope):
            size += len(chunk)
            if size > limits.MAX_OUTPUT_CHARS:
                raise limits.TemplateLimit(f"template output over {limits.MAX_OUTPUT_CHARS} chars")
            out.append(chunk)
        return "".join(out)
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except limits.TemplateLimit as exc:
        raise TemplateProblem(f"template stopped: {exc}") from None
    except RecursionError:
        raise TemplateProblem("template stopped: recursion too deep") from None
    except MemoryError:
        raise TemplateProblem("template stopped: out of memory") from None
    except Exception as exc:  # OverflowError, TypeError, ...: data the template did not expect
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None
    finally:
        limits.start_budget(float("inf"))


def render_value(value: Any, data: dict[str, Any] | RenderScope, base_dir: Path) -> Any:
    """Render every string in a parameter tree; `{template: file}` renders a file. Its
    templates share one RenderScope (pass one to share it with other trees too)."""
    scope = data if isinstance(data, RenderScope) else RenderScope(data)
    if isinstance(value, str):
        return render_string(value, scope) if has_template(value) else value
    if isinstance(value, dict):
        if set(value) == {"template"}:
            return render_string(read_template(base_dir, value["template"]), scope)
        return {k: render_value(v, scope, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, scope, base_dir) for v in value]
    return value


def read_template(base_dir: Path, name: Any) -> str:
    """A template file, which must be inside the mapping file's folder after symlinks: a
    rule must not read /etc/shadow or the systemd credentials and mail them out."""
    if not isinstance(name, str) or not name:
        raise TemplateProblem("`template:` takes a file name relative to the mapping file")
    folder = base_dir.resolve()
    path = (base_dir / name).resolve()
    if not path.is_relative_to(folder):
        raise TemplateProblem(
            f"template file {name} is outside the mapping folder {folder}: "
            "keep template files in that folder (symlinks are followed)"
        )
    try:
        if not path.is_file():
            raise TemplateProblem(f"template file {name} is not a regular file")
        with path.open("rb") as fh:
            data = fh.read(MAX_TEMPLATE_FILE_BYTES + 1)
    except OSError as exc:
        raise TemplateProblem(f"cannot read template file {name}: {exc.strerror}") from None
    if len(data) > MAX_TEMPLATE_FILE_BYTES:
        raise TemplateProblem(f"template file {name} is over {MAX_TEMPLATE_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateProblem(f"template file {name} is not UTF-8 text") from None


def walk_templates(value: Any, base_dir: Path) -> list[tuple[tuple[Any, ...], str]]:
    """Every template source in a parameter tree, with its path (for `syncd check`)."""
    found: list[tuple[tuple[Any, ...], str]] = []

    def walk(v: Any, path: tuple[Any, ...]) -> None:
        if isinstance(v, str) and has_template(v):
            found.append((path, v))
        elif isinstance(v, dict):
            if set(v) == {"template"}:
                found.append((path + ("template",), read_template(base_dir, v["template"])))
            else:
                for k, sub in v.items():
                    walk(sub, path + (k,))
        elif isinstance(v, list):
            for i, sub in enumerate(v):
                walk(sub, path + (i,))

    walk(value, ())
    return found


__all__ = [
    "ENV",
    "RenderScope",
    "TemplateProblem",
    "nodes",
    "render_string",
    "render_value",
    "undeclared_names",
]
