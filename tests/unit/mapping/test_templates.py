"""Templates: the sandbox, strict undefined names, template files and the custom filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.mapping.planner import Change
from syncd.mapping.planner import explain_change as evaluate_change
from syncd.mapping.templates import TemplateProblem, render_string, render_value
from syncd.model import ObjectRef

DEAL = {"deal": {"name": "Ocean", "owner": "@alice", "tags": ["a"]}}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ deal.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ deal.tags.append('x') }}",  # immutable sandbox: no mutation of data
        "{{ deal.update({'name': 'x'}) }}",
    ],
)
def test_sandbox_blocks_python_internals(source: str) -> None:
    with pytest.raises(TemplateProblem):
        render_string(source, {k: {**v, "tags": list(v["tags"])} for k, v in DEAL.items()})


def test_sandbox_leaves_data_untouched() -> None:
    data = {"deal": {"name": "Ocean", "tags": ["a"]}}
    with pytest.raises(TemplateProblem):
        render_string("{{ deal.tags.append('x') }}", data)
    assert data["deal"]["tags"] == ["a"]


def test_crm_data_is_never_rendered_as_a_template() -> None:
    data = {"deal": {"name": "{{ ''.__class__.__mro__ }}"}}
    assert render_string("Deal: {{ deal.name }}", data) == "Deal: {{ ''.__class__.__mro__ }}"


def test_strict_undefined_raises_on_a_missing_field() -> None:
    with pytest.raises(TemplateProblem, match="missing_field"):
        render_string("{{ deal.missing_field }}", DEAL)


def test_strict_undefined_raises_on_a_missing_root() -> None:
    with pytest.raises(TemplateProblem, match="company"):
        render_string("{{ company.name }}", DEAL)


def test_default_filter_covers_optional_fields() -> None:
    assert render_string("{{ deal.website | default('n/a') }}", DEAL) == "n/a"


def test_render_value_walks_lists_and_tables(tmp_path: Path) -> None:
    params = {
        "title": "{{ deal.name }}",
        "labels": ["hub", "{{ deal.name | lower }}"],
        "fields": {"n": 3, "s": "{{ deal.tags | length }}"},
        "plain": "{x}",
    }
    assert render_value(params, DEAL, tmp_path) == {
        "title": "Ocean",
        "labels": ["hub", "ocean"],
        "fields": {"n": 3, "s": "1"},
        "plain": "{x}",
    }


def test_template_file_is_relative_to_the_mapping_file(
    write_mapping, mapping_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = mapping_dir / "sales" / "templates"
    templates.mkdir(parents=True)
    (tmp_path / "templates").mkdir()  # a decoy relative to the working directory
    (tmp_path / "templates" / "new-hub.md.j2").write_text("wrong file")
    (templates / "new-hub.md.j2").write_text(
        "Community: {{ deal.name }}\n"
        "{% for tag in deal.tags %}- {{ tag }}\n{% endfor %}"
        "Owner: {{ deal.owner | no_mentions }}\n"
    )
    write_mapping(
        """
        rules:
          - id: new-hub
            when: {source: localdb, object: deal, field: stage, to: won}
            do:
              - localdb.record:
                  title: "New hub {{ deal.name }}"
                  body: {template: templates/new-hub.md.j2}
    """,
        name="sales/hubs.yaml",
    )
    from syncd.mapping.loader import load_rules

    # from another working directory: the path is the mapping file's, not cwd's
    monkeypatch.chdir(tmp_path)
    ruleset = load_rules([mapping_dir / "sales"])
    change = Change(
        ObjectRef("localdb", "deal", "1"),
        fields={"stage": "won", "name": "Ocean", "tags": ["x", "y"], "owner": "@team"},
        previous={"stage": "open"},
    )
    (verdict,) = evaluate_change(ruleset, change)
    (planned,) = verdict.actions
    assert planned.error is None
    assert planned.params["body"] == "Community: Ocean\n- x\n- y\nOwner: @\u200dteam\n"


def test_missing_field_in_a_rule_becomes_an_action_error(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: deal, field: stage}
            do:
              - localdb.record: {title: "{{ deal.website }}"}
    """)
    change = Change(ObjectRef("localdb", "deal", "1"), {"stage": "b"}, {"stage": "a"})
    (verdict,) = evaluate_change(load_ok(), change)
    (planned,) = verdict.actions
    assert planned.params == {}
    assert planned.error is not None and "website" in planned.error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping @team and @bob", "ping @\u200dteam and @\u200dbob"),
        ("no mention", "no mention"),
        ("mail a@b.org", "mail a@\u200db.org"),
    ],
)
def test_no_mentions_filter(text: str, expected: str) -> None:
    assert render_string("{{ v | no_mentions }}", {"v": text}) == expected


@pytest.mark.parametrize(
    ("value", "template", "expected"),
    [
        ("2026-03-05T14:30:00Z", "{{ v | date }}", "2026-03-05"),
        ("2026-03-05", "{{ v | date('%d/%m/%Y') }}", "05/03/2026"),
        (1767225600000, "{{ v | date }}", "2026-01-01"),  # epoch milliseconds
        (datetime(2026, 7, 1, 9, 0, tzinfo=UTC), "{{ v | date('%H:%M') }}", "09:00"),
        ("not a date", "{{ v | date }}", ""),
        (None, "{{ v | date }}", ""),
    ],
)
def test_date_filter(value: object, template: str, expected: str) -> None:
    assert render_string(template, {"v": value}) == expected


def test_syntax_error_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem):
        render_string("{% for x in %}", {})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 'a' * 10**9 }}", "limit"),
        ("{{ [1, 2] * 10**9 }}", "limit"),
        ("{% for i in range(10**9) %}{% endfor %}", "range"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "budget",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}",
            "limit",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
            "{% endfor %}",
            "limit",
        ),
        ("{% for i in range(10000) %}{{ 'a' * 1000 }}{% endfor %}", "output"),
        (
            "{% set x %}{% for i in range(10000) %}{{ 'a' * 1000 }}{% endfor %}{% endset %}",
            "output",
        ),
        ("{{ 2 ** (10 ** 9) }}", "bits"),
        ("{{ '%1000000000d' % 1 }}", "width"),
        ("{{ '{:>1000000000}'.format(1) }}", "width"),
        ("{{ 'x'.center(10**9) }}", "width"),
        ("{{ 'x' | center(10**9) }}", "over"),
        ("{{ ('a' * 1000).replace('a', 'a' * 10000) }}", "replace"),
        ("{{ (['a' * 100000] * 1000) | join }}", "join"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "recursion"),
        ("{{ 10 ** 400 * 1.0 }}", "OverflowError"),
    ],
)
def test_a_render_is_bounded_in_time_and_size(source: str, reason: str) -> None:
    import time

    from syncd.mapping import limits

    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        render_string(source, {})
    assert reason in str(caught.value)
    assert time.monotonic() - started < limits.TIME_BUDGET_SECONDS + 1.5


def test_ordinary_templates_still_render() -> None:
    source = (
        "{{ 3 * 4 }} {{ 'ab' * 3 }} {{ [1, 2] | join(',') }} "
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ '%05.2f' % 3.14159 }} "
        "{{ '{:>4}'.format('a') }} {{ 'a b'.replace('a', 'c') }} {{ '-'.join(['x', 'y']) }}"
        " {{ 'x' ~ 1 }} {{ 'ab' | center(6) }}"
    )
    assert render_string(source, {}) == "12 ababab 1,2 012 03.14    a c b x-y x1   ab  "
