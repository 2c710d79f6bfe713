"""Templates in mapping files: Jinja2 in an immutable sandbox with strict undefined names.

CRM data is untrusted: the sandbox stops a deal name like `{{ ''.__class__ }}` from reaching
Python internals (and data is never rendered as a template anyway: only mapping files are),
and StrictUndefined turns a misspelt field into an error instead of an empty string in an
issue that engineers will read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syncd.mapping.conditions import as_datetime


def _date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    moment = as_datetime(value)
    return moment.strftime(fmt) if moment else ""


def _no_mentions(value: Any) -> str:
    """Keep CRM text from pinging people on GitHub: "@team" -> "@\u200dteam"."""
    return str(value).replace("@", "@\u200d")


def make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = _date
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["no_mentions"] = _no_mentions
    env.globals["utcnow"] = lambda: datetime.now(UTC)
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


def has_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def render_string(source: str, data: dict[str, Any]) -> str:
    try:
        return ENV.from_string(source).render(data)
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None


def render_value(value: Any, data: dict[str, Any], base_dir: Path) -> Any:
    """Render every string in a parameter tree; `{template: file}` renders a file."""
    if isinstance(value, str):
        return render_string(value, data) if has_template(value) else value
    if isinstance(value, dict):
        if set(value) == {"template"}:
            return render_string(read_template(base_dir, value["template"]), data)
        return {k: render_value(v, data, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, data, base_dir) for v in value]
    return value


def read_template(base_dir: Path, name: str) -> str:
    path = (base_dir / name).resolve()
    try:
        return path.read_text()
    except OSError as exc:
        raise TemplateProblem(f"cannot read template file {name}: {exc.strerror}") from None


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


__all__ = ["ENV", "TemplateProblem", "nodes", "render_string", "render_value", "undeclared_names"]
