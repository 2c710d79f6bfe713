"""A rule's templates share one render scope (issue 17: Jinja copied the data twice per
template). What they render, and how they fail, must stay what Jinja's own
`Template.generate` gives."""

from __future__ import annotations

from collections import UserDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.mapping.templates import ENV, RenderScope, TemplateProblem, render_string, render_value

DATA: dict[str, Any] = {
    "deal": {"id": "42", "name": "Ocean @team", "amount": "1200.5", "tags": ["b", "a"]},
    "now": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    "vars": {"repo": "org/repo"},
    "range": "a field named like a global",
}

SOURCES = [
    "Deal won: {{ deal.id }}",
    "HubSpot deal {{ deal.id }} moved to Closed Won.",
    "{{ deal.name | no_mentions }} {{ deal.amount | amount }} {{ now | date('%d.%m.%Y') }}",
    "{% for t in deal.tags | sort %}{{ loop.index }}={{ t }};{% endfor %}",
    "{% set x = deal.id ~ '!' %}{{ x }} {{ deal | tojson }}",
    "{% macro b(v) %}<{{ v }}>{% endmacro %}{{ b(deal.name) }}{{ range }}",
    "{{ deal.missing | default('n/a') }} {{ vars.repo }}\n",
    "{{ now | add_days(3) }} {{ deal.tags | join(', ') }}",
    # the environment's globals, read from the flattened copy a compiled template keeps
    "{% set ns = namespace(n=deal.id) %}{{ ns.n }} {{ dict(a=1) | tojson }}",
    "{{ utcnow is defined }} {{ cycler is defined }}",
]


def jinja_generate(source: str, data: dict[str, Any]) -> str:
    """The render as Jinja's own Template.generate gives it (a template compiled apart)."""
    return "".join(ENV.from_string(source).generate(data))


@pytest.mark.parametrize("source", SOURCES)
def test_a_shared_scope_renders_what_jinja_renders(source: str) -> None:
    scope = RenderScope(DATA)
    for _ in range(2):  # the scope's second render reuses what its first built
        assert render_string(source, scope) == jinja_generate(source, DATA)


def test_every_template_of_a_tree_renders_as_alone(tmp_path: Path) -> None:
    (tmp_path / "body.md").write_text("Body of {{ deal.name }}\n")
    params = {"title": SOURCES[0], "labels": SOURCES[3:5], "body": {"template": "body.md"}}
    assert render_value(params, DATA, tmp_path) == {
        "title": jinja_generate(SOURCES[0], DATA),
        "labels": [jinja_generate(SOURCES[3], DATA), jinja_generate(SOURCES[4], DATA)],
        "body": "Body of Ocean @team\n",
    }


class CountingData(UserDict[str, Any]):
    """Data that counts how often a value is read from it."""

    reads = 0

    def __getitem__(self, key: str) -> Any:
        self.reads += 1
        return super().__getitem__(key)


def test_a_trees_templates_read_the_data_once(tmp_path: Path) -> None:
    data = CountingData(DATA)
    params = {"title": SOURCES[0], "body": SOURCES[1], "more": [SOURCES[6]]}
    render_value(params, data, tmp_path)  # type: ignore[arg-type]
    assert data.reads == len(DATA)  # merged once, not once per template (3 templates)


def test_a_set_in_one_template_does_not_reach_the_next() -> None:
    scope = RenderScope(DATA)
    assert render_string("{% set deal = 'x' %}{% set y = 1 %}{{ deal }}{{ y }}", scope) == "x1"
    assert render_string("{{ deal.id }} {{ y | default('unset') }}", scope) == "42 unset"


def test_a_data_error_is_each_renders_error() -> None:
    """Keys Jinja cannot take fail every render of the scope, as they failed each render."""
    scope = RenderScope({1: "not a name", "deal": {"id": "1"}})
    for _ in range(2):
        with pytest.raises(TemplateProblem, match="keywords must be strings"):
            render_string("{{ deal.id }}", scope)


def test_undefined_names_fail_as_before_in_a_shared_scope() -> None:
    scope = RenderScope(DATA)
    with pytest.raises(TemplateProblem, match="'dict object' has no attribute 'nope'"):
        render_string("{{ deal.nope }}", scope)
    with pytest.raises(TemplateProblem, match="'company' is undefined"):
        render_string("{{ company.name }}", scope)
    assert render_string("{{ deal.id }}", scope) == "42"  # the scope is still good
