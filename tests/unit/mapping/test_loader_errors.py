"""The loader names file, line, rule id and field for every kind of mapping error."""

from __future__ import annotations

from collections.abc import Callable

from syncd.mapping.loader import Problem
from syncd.mapping.model import ChangeTrigger

Problems = Callable[[], list[Problem]]

GOOD_RULE = """
  - id: {rule_id}
    when: {{source: localdb, object: item, field: status}}
    do:
      - localdb.record: {{title: "ok"}}
"""


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def test_good_file_loads(write_mapping, load_ok) -> None:
    path = write_mapping("""
        rules:
          - id: closed-won
            description: open a record when an item is done
            when: {source: localdb, object: item, field: status, to: done}
            if:
              amount: {gte: 1000}
            once_per_object: true
            do:
              - localdb.record:
                  title: "Done: {{ item.name }}"
                  labels: [sales]
              - localdb.set_fields: {type: item, id: "{{ item.id }}", fields: {seen: true}}
            examples:
              - object: {id: "7", name: Acme, status: done, amount: 5000}
                previous: {status: open}
                expect:
                  - {action: localdb.record, title: "Done: Acme", labels: [sales]}
                  - {action: localdb.set_fields, id: "7"}
              - object: {id: "8", name: Tiny, status: done, amount: 5}
                previous: {status: open}
                expect: []
    """)
    ruleset = load_ok()
    assert [r.id for r in ruleset.rules] == ["closed-won"]
    rule = ruleset.by_id["closed-won"]
    assert rule.file == str(path)
    assert rule.line == 2
    assert isinstance(rule.trigger, ChangeTrigger)
    assert [a.name for a in rule.actions] == ["localdb.record", "localdb.set_fields"]


def test_yaml_syntax_error(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert problem.file == str(path)
    assert problem.line == 4  # where the parser notices the unclosed table
    assert problem.field == ""
    assert problem.rule_id is None
    assert "YAML syntax" in problem.message


def test_unknown_connector_in_trigger(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when:
              source: nosuch
              object: item
              field: status
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        4,
        "r1",
        "when.source",
    )
    assert "unknown connector 'nosuch'" in problem.message
    assert "localdb" in problem.message  # lists the installed ones


def test_unknown_connector_in_action(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record: {title: x}
              - nosuch.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        6,
        "r1",
        "do.1.nosuch.record",
    )
    assert "unknown connector 'nosuch'" in problem.message


def test_unknown_action(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.nope: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        5,
        "r1",
        "do.0.localdb.nope",
    )
    assert "unknown action 'localdb.nope'" in problem.message
    assert "record" in problem.message and "set_fields" in problem.message


def test_missing_parameter(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record:
                  body: no title here
    """)
    problem = only(load_problems())
    assert (problem.file, problem.rule_id, problem.field) == (
        str(path),
        "r1",
        "do.0.localdb.record.title",
    )
    assert problem.line == 5  # the action: the missing key has no line of its own
    assert "required" in problem.message.lower()


def test_mistyped_parameter(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record:
                  title: x
                  labels: 5
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        7,
        "r1",
        "do.0.localdb.record.labels",
    )
    assert "list" in problem.message


def test_unknown_parameter(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record:
                  title: x
                  lables: [a]
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        7,
        "r1",
        "do.0.localdb.record.lables",
    )


def test_templated_parameter_type_is_left_to_run_time(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record: {title: x, labels: "{{ item.tags }}"}
    """)
    assert [r.id for r in load_ok().rules] == ["r1"]


def test_unknown_condition_operator(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            if:
              all:
                - amount: {gte: 1}
                - region:
                    equals: EU
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        8,
        "r1",
        "if.all.1.region.equals",
    )
    assert "unknown operator 'equals'" in problem.message
    assert "eq" in problem.message


def test_template_syntax_error(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.record:
                  title: "{{ item.name "
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        6,
        "r1",
        "do.0.localdb.record.title",
    )
    assert "template syntax error" in problem.message


def test_undefined_name_in_template(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: deal, field: stage}
            do:
              - localdb.record:
                  title: x
                  body: "{{ dael.name }}"
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        7,
        "r1",
        "do.0.localdb.record.body",
    )
    assert "dael" in problem.message
    assert "deal" in problem.message  # says what is available


def test_undefined_name_in_template_file(write_mapping, mapping_dir, load_problems) -> None:
    (mapping_dir / "body.md.j2").write_text("Hello {{ deal.name }} {{ customer.email }}\n")
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: deal, field: stage}
            do:
              - localdb.record:
                  title: x
                  body: {template: body.md.j2}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.rule_id, problem.field) == (
        str(path),
        "r1",
        "do.0.localdb.record.body.template",
    )
    assert problem.line == 7
    assert "customer" in problem.message


def test_missing_template_file(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: localdb, object: deal, field: stage}
            do:
              - localdb.record:
                  title: x
                  body: {template: nowhere.j2}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.rule_id) == (str(path), "r1")
    assert problem.field.startswith("do.0.localdb.record")
    assert "nowhere.j2" in problem.message


def test_bad_cron_expression(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: quarterly
            when:
              cron: "61 9 1 */3 *"
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        4,
        "quarterly",
        "when.cron",
    )
    assert "bad cron expression" in problem.message


def test_bad_time_zone(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: expiring
            when:
              source: localdb
              object: deal
              date: end_date
              offset: -60d
              timezone: Mars/Olympus_Mons
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        8,
        "expiring",
        "when.timezone",
    )
    assert "unknown time zone 'Mars/Olympus_Mons'" in problem.message


def test_bad_offset(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: expiring
            when:
              source: localdb
              object: deal
              date: end_date
              offset: 60 days before
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        7,
        "expiring",
        "when.offset",
    )
    assert "bad offset" in problem.message


def test_bad_time_of_day(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: expiring
            when: {source: localdb, object: deal, date: end_date, at: "9 o'clock"}
            do:
              - localdb.record: {title: x}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(path),
        3,
        "expiring",
        "when.at",
    )


def test_duplicate_rule_id_across_files(write_mapping, load_problems: Problems) -> None:
    first = write_mapping("rules:" + GOOD_RULE.format(rule_id="same"), name="a.yaml")
    second = write_mapping(
        "rules:" + GOOD_RULE.format(rule_id="other") + GOOD_RULE.format(rule_id="same"),
        name="b.yaml",
    )
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id, problem.field) == (
        str(second),
        7,
        "same",
        "id",
    )
    assert "duplicate rule id" in problem.message
    assert str(first) in problem.message


def test_failing_example(write_mapping, load_problems: Problems) -> None:
    path = write_mapping("""
        rules:
          - id: done
            when: {source: localdb, object: item, field: status, to: done}
            do:
              - localdb.record: {title: "Done {{ item.name }}"}
            examples:
              - name: finish
                object: {name: A, status: done}
                previous: {status: open}
                expect:
                  - {action: localdb.record, title: "Done B"}
    """)
    problem = only(load_problems())
    assert (problem.file, problem.line, problem.rule_id) == (str(path), 2, "done")
    assert problem.field == "examples.0 (finish)"
    assert "'Done A'" in problem.message and "'Done B'" in problem.message


def test_example_expecting_no_action_fails_when_rule_fires(write_mapping, load_problems) -> None:
    write_mapping("""
        rules:
          - id: done
            when: {source: localdb, object: item, field: status, to: done}
            do:
              - localdb.record: {title: x}
            examples:
              - object: {status: done}
                previous: {status: open}
                expect: []
    """)
    problem = only(load_problems())
    assert problem.field == "examples.0"
    assert "expected actions []" in problem.message


def test_several_errors_in_one_file_are_all_reported(write_mapping, load_problems) -> None:
    path = write_mapping("""
        rules:
          - id: r1
            when: {source: nosuch, object: item, field: status}
            do:
              - localdb.record: {title: x}
          - id: r2
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.nope: {title: x}
              - localdb.record: {labels: 5}
          - id: r3
            when: {source: localdb, object: deal, field: status}
            if: {amount: {greater: 3}}
            do:
              - localdb.record: {title: "{{ dael.name }}"}
          - id: r4
            when: {source: localdb, object: item, field: status, to: done}
            do:
              - localdb.record: {title: "{{ item.name"}
    """)
    found = {(p.line, p.rule_id, p.field) for p in load_problems()}
    assert all(p.file == str(path) for p in load_problems())
    assert found == {
        (3, "r1", "when.source"),
        (9, "r2", "do.0.localdb.nope"),
        (10, "r2", "do.1.localdb.record.title"),
        (10, "r2", "do.1.localdb.record.labels"),
        (13, "r3", "if.amount.greater"),
        (15, "r3", "do.0.localdb.record.title"),
        (19, "r4", "do.0.localdb.record.title"),
    }


def test_problems_of_every_file_are_reported(write_mapping, load_problems) -> None:
    bad_cron = write_mapping(
        """
        rules:
          - id: r1
            when: {cron: "not a cron"}
            do:
              - localdb.record: {title: x}
    """,
        name="a.yaml",
    )
    bad_action = write_mapping(
        """
        rules:
          - id: r2
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.nope: {title: x}
    """,
        name="b.yaml",
    )
    found = {(p.file, p.rule_id, p.field) for p in load_problems()}
    assert found == {
        (str(bad_cron), "r1", "when.cron"),
        (str(bad_action), "r2", "do.0.localdb.nope"),
    }


def test_schema_and_compile_errors_in_one_file_are_all_reported(
    write_mapping, load_problems: Problems
) -> None:
    write_mapping("""
        rules:
          - id: r1
            when: {cron: "61 * * * *"}
            do:
              - localdb.record: {title: x}
          - id: r2
            when: {source: localdb, object: item, field: status}
            do:
              - localdb.nope: {title: x}
    """)
    found = {(p.rule_id, p.field) for p in load_problems()}
    assert found == {("r1", "when.cron"), ("r2", "do.0.localdb.nope")}


def test_unknown_connector_in_cron_for_each_is_reported(write_mapping, load_problems) -> None:
    write_mapping("""
        rules:
          - id: quarterly
            when:
              cron: "0 9 1 */3 *"
              for_each:
                source: nosuch
                object: epic
            do:
              - localdb.record: {title: "{{ epic.name }}"}
    """)
    problem = only(load_problems())
    assert problem.rule_id == "quarterly"
    assert "unknown connector 'nosuch'" in problem.message


def test_unknown_connector_in_cron_for_each_names_its_field(
    write_mapping, load_problems: Problems
) -> None:
    write_mapping("""
        rules:
          - id: quarterly
            when:
              cron: "0 9 1 */3 *"
              for_each:
                source: nosuch
                object: epic
            do:
              - localdb.record: {title: "{{ epic.name }}"}
    """)
    problem = only(load_problems())
    assert (problem.line, problem.field) == (6, "when.for_each.source")


def test_unknown_connector_in_cron_collect(write_mapping, load_problems: Problems) -> None:
    write_mapping("""
        rules:
          - id: monthly
            when:
              cron: "0 9 1 * *"
              collect: {source: nosuch, object: row}
            do:
              - localdb.record: {title: "{{ items | length }} rows"}
    """)
    problem = only(load_problems())
    assert problem.rule_id == "monthly"
    assert problem.field.startswith("when.collect")
    assert "unknown connector 'nosuch'" in problem.message


def test_problem_text_names_file_line_rule_and_field() -> None:
    problem = Problem("m/sales.yaml", 14, "new-hub", "do.0.localdb.record.labels", "bad")
    assert str(problem) == "m/sales.yaml:14: rule new-hub: do.0.localdb.record.labels: bad"


def test_rule_id_must_be_a_slug(write_mapping, load_problems: Problems) -> None:
    write_mapping("rules:" + GOOD_RULE.format(rule_id="Not A Slug"))
    problem = only(load_problems())
    assert (problem.line, problem.rule_id, problem.field) == (2, "Not A Slug", "id")


def test_empty_file_has_no_rules(write_mapping, load_ok) -> None:
    write_mapping("# nothing yet\n")
    assert load_ok().rules == []


def test_for_each_template_may_use_the_item(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: quarterly
            when:
              cron: "0 9 1 */3 *"
              for_each: {source: localdb, object: epic}
            do:
              - localdb.record: {title: "Review {{ epic.name }} / {{ item.name }}"}
    """)
    assert [r.id for r in load_ok().rules] == ["quarterly"]
