"""The one planner: explain lists every rule's outcome; event files take stage labels or ids;
simulate, explain, the examples and ingest plan the same actions with the same keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.ingest import Ingestor, RulesHolder
from syncd.kv import KeyValue
from syncd.mapping.loader import load_rules
from syncd.mapping.model import Example
from syncd.mapping.planner import (
    FIRED,
    RENDER_FAILED,
    Change,
    _example_planned,
    explain_change,
    plan_event_file,
)
from syncd.model import ObjectRef, Observation
from syncd.store.db import open_store
from syncd.store.schema import actions

MIXED = """
rules:
  - id: ok
    when: {source: localdb, object: deal, field: stage, to: won}
    do:
      - localdb.record: {title: "{{ deal.name }} won"}
  - id: broken
    when: {source: localdb, object: deal, field: stage, to: won}
    do:
      - localdb.record: {title: "{{ deal.name.nope() }}"}
  - id: renewal
    when: {source: localdb, object: deal, date: end_date, offset: "-30d", at: "09:00"}
    do:
      - localdb.record: {title: "renew {{ deal.name }}"}
  - id: weekly
    when: {cron: "0 9 * * 1", for_each: {source: localdb, object: deal, query: {}}}
    if: {amount: {gte: 1000}}
    do:
      - localdb.record: {title: "weekly {{ deal.name }}"}
"""


def _event(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(data))
    return path


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_explain_lists_every_rule_with_its_outcome(
    config_file: Path, mapping_dir: Path, tmp_path: Path
) -> None:
    (mapping_dir / "r.yaml").write_text(MIXED)
    event = _event(
        tmp_path,
        {
            "source": "localdb",
            "object": "deal",
            "id": "7",
            "now": "2026-03-02T10:00:00+00:00",
            "fields": {"stage": "won", "name": "Acme", "end_date": "2026-03-20", "amount": 50},
            "previous": {"stage": "open"},
        },
    )
    lines = _run("explain", "--config", str(config_file), "--event", str(event)).splitlines()
    by_rule = {line.split(":")[0].split()[-1]: line for line in lines}
    assert by_rule["ok"] == "FIRED ok: fired -> localdb.record"
    assert by_rule["broken"].startswith("FAILED broken: localdb.record: template error")
    # the renewal (20 March - 30 days = 18 Feb, 09:00) is due; the weekly run is next Monday
    assert by_rule["renewal"] == "FIRED renewal: fired -> localdb.record"
    assert by_rule["weekly"].startswith("-     weekly: cron rule, at its next run 2026-03-09")
    assert "condition failed: amount gte 1000" in by_rule["weekly"]


def test_a_render_failure_is_never_fired(config_file: Path, mapping_dir: Path) -> None:
    (mapping_dir / "r.yaml").write_text(MIXED)
    rules = load_rules([mapping_dir], run_examples=False)
    change = Change(
        ObjectRef("localdb", "deal", "1"), {"stage": "won", "name": "A"}, {"stage": "open"}
    )
    outcome = {d.rule_id: d for d in explain_change(rules, change)}
    assert outcome["broken"].outcome == RENDER_FAILED
    assert not outcome["broken"].fired
    (failed,) = outcome["broken"].actions
    assert failed.error and failed.replan is not None  # enough to plan it again
    assert outcome["ok"].outcome == FIRED
    assert outcome["weekly"].outcome != FIRED


HUBSPOT_RULE = """
rules:
  - id: won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - email.send: {to: [ops@example.com], subject: "won {{ deal.dealname }}", body: x}
"""


def _hubspot_config(tmp_path: Path, mapping_dir: Path) -> Path:
    (mapping_dir / "r.yaml").write_text(HUBSPOT_RULE)
    path = tmp_path / "hs.toml"
    path.write_text(
        f'[syncd]\nmappings = ["{mapping_dir}"]\nstate_dir = "{tmp_path / "st"}"\n'
        '[hubspot]\n[email]\nfrom_address = "syncd@example.com"\n'
    )
    return path


def test_event_files_take_stage_ids_or_labels_offline(tmp_path: Path, mapping_dir: Path) -> None:
    config = _hubspot_config(tmp_path, mapping_dir)
    for old, new in (("contractadmin", "closedwon"), ("Contract Admin", "Closed Won")):
        event = _event(
            tmp_path,
            {
                "source": "hubspot",
                "object": "deal",
                "id": "42",
                "fields": {"dealstage": new, "dealname": "Acme"},
                "previous": {"dealstage": old},
            },
        )
        out = _run("explain", "--config", str(config), "--event", str(event))
        assert "FIRED won: fired -> email.send" in out, out


def test_event_files_use_the_stage_names_the_daemon_stored(
    tmp_path: Path, mapping_dir: Path
) -> None:
    config = _hubspot_config(tmp_path, mapping_dir)
    (mapping_dir / "r.yaml").write_text(HUBSPOT_RULE.replace("Closed Won", "Signed"))
    (tmp_path / "st").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'st' / 'syncd.sqlite3'}")
    KeyValue(store, "hubspot", FakeClock(datetime(2026, 1, 1, tzinfo=UTC))).set(
        "aliases:deal:dealstage", {"aliases": {"Signed": "closedwon"}, "read_at": 0}
    )
    store.dispose()
    event = _event(
        tmp_path,
        {
            "source": "hubspot",
            "object": "deal",
            "id": "42",
            "fields": {"dealstage": "closedwon", "dealname": "Acme"},
            "previous": {"dealstage": "contractadmin"},
        },
    )
    out = _run("explain", "--config", str(config), "--event", str(event))
    assert "FIRED won: fired -> email.send" in out, out


AGREE = """
rules:
  - id: to-won
    when: {source: localdb, object: deal, field: stage, to: won}
    if: {amount: {gte: 1000}}
    do:
      - localdb.record: {title: "{{ deal.name }} {{ event.from }}"}
  - id: any-stage
    when: {source: localdb, object: deal, field: stage}
    do:
      - localdb.record: {title: "{{ deal.stage }}"}
  - id: latest
    when: {source: localdb, object: deal, field: stage, history: latest}
    do:
      - localdb.record: {title: "net"}
  - id: once
    when: {source: localdb, object: deal, field: owner}
    once_per_object: true
    do:
      - localdb.set_fields: {type: deal, id: "{{ deal.id }}", fields: {seen: true}}
  - id: created
    when: {source: localdb, object: deal, created: true}
    do:
      - localdb.record: {title: "new {{ deal.name }}"}
"""

values = st.sampled_from(["open", "won", "lost", None])
events = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["1", "2", "3"]),
        "created": st.booleans(),
        "fields": st.fixed_dictionaries(
            {
                "stage": values,
                "owner": st.sampled_from(["ann", "bob"]),
                "amount": st.integers(0, 3000),
                "name": st.text("abc", max_size=4),
            }
        ),
        "previous": st.fixed_dictionaries(
            {"stage": values, "owner": st.sampled_from(["ann", "bob"])}
        ),
        "version": st.integers(1, 10**6),
    }
)


@settings(
    max_examples=100,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=events)
def test_simulate_explain_examples_and_ingest_agree(
    data: dict[str, Any], tmp_path_factory: Any, config_file: Path, mapping_dir: Path
) -> None:
    (mapping_dir / "r.yaml").write_text(AGREE)
    rules = load_rules([mapping_dir], run_examples=False)
    now = "2026-01-05T09:00:00+00:00"
    event = {"source": "localdb", "object": "deal", "now": now, **data}
    change = Change.from_dict(event)
    tmp = tmp_path_factory.mktemp("agree")

    def keyed(items: Any) -> list[tuple[str, str, str]]:
        return [(a.rule_id, a.key, json.dumps(a.params, sort_keys=True)) for a in items]

    planned = keyed(plan_event_file(rules, change).actions)
    explained = keyed(a for d in explain_change(rules, change) for a in d.actions)
    assert sorted(explained) == sorted(planned)  # explain lists them in rule order

    simulated = [
        json.loads(line)
        for line in _run(
            "simulate", "--config", str(config_file), "--event", str(_event(tmp, event))
        ).splitlines()
    ]
    assert [
        (s["rule"], s["key"], json.dumps(s["params"], sort_keys=True)) for s in simulated
    ] == planned

    # production: the snapshot stored, then the observation ingested
    store = open_store(f"sqlite:///{tmp / 'state.sqlite3'}")
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ingestor = Ingestor(store, RulesHolder(rules), clock, frozenset({"localdb"}))
    ref = change.ref
    if not change.created:
        ingestor.ingest([Observation(ref, {**change.fields, **change.previous}, 0)], fire=False)
    ingestor.ingest([Observation(ref, change.fields, change.version)])
    with store.engine.connect() as conn:
        rows = conn.execute(actions.select().order_by(actions.c.id)).mappings().all()
    store.dispose()
    assert {(r["rule_id"], r["key"], json.dumps(r["params"], sort_keys=True)) for r in rows} == set(
        planned
    )
    assert len(rows) == len(planned)

    # the examples of `check` plan through the same code: same rule, same actions
    for rule in rules.event_rules():
        if rule.id == "created":  # its examples describe a creation, not this update
            continue
        example = Example(
            object={**change.fields, "id": ref.id}, previous=change.previous, now=now, expect=[]
        )
        via_example = [a.params for a in _example_planned(rule, example)]
        if not change.created:
            assert via_example == [json.loads(p) for r, _, p in planned if r == rule.id]


def test_check_offline_names_a_stage_hubspot_does_not_have(
    tmp_path: Path, mapping_dir: Path
) -> None:
    config = _hubspot_config(tmp_path, mapping_dir)
    (mapping_dir / "r.yaml").write_text(HUBSPOT_RULE.replace("Closed Won", "Closed won"))
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert (
        "warning: [hubspot] " in result.output
        and "rule won: deal stage 'Closed won' is not in HubSpot's default pipeline"
        in result.output
    ), result.output
    (mapping_dir / "r.yaml").write_text(HUBSPOT_RULE)
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert "default pipeline" not in result.output, result.output


def test_event_keys_given_by_ingest_key_the_actions_of_those_events_only(
    mapping_dir: Path,
) -> None:
    """Ingest hands the planner the keys it stored the events under (issue 17: not hashed
    twice). An action is keyed by its event's given key; a net change (`history: latest`)
    is an event of its own and keyed by its own key, never by a given one."""
    from syncd.diff import event_key
    from syncd.mapping.planner import change_key_parts, plan_change
    from syncd.mapping.rules import make_key
    from syncd.model import Event

    (mapping_dir / "r.yaml").write_text(AGREE)
    rules = load_rules([mapping_dir], run_examples=False)
    ref = ObjectRef("localdb", "deal", "1")
    fields = {"stage": "won", "owner": "ann", "amount": 5000, "name": "n"}
    steps = [
        Event(ref, "changed", "stage", "open", "lost", 1),
        Event(ref, "changed", "stage", "lost", "won", 2),
    ]
    now = datetime(2026, 1, 5, tzinfo=UTC)
    given = ["given-0", "given-1"]
    plan = plan_change(rules, ref, fields, {}, {"stage": "open"}, steps, now, given)
    keys = {(a.rule_id, a.key) for a in plan.actions}
    by_rule = {r.id: r for r in rules.rules}
    assert ("to-won", make_key("to-won", 0, str(ref), "given-1")) in keys
    assert ("any-stage", make_key("any-stage", 0, str(ref), "given-0")) in keys
    net = Event(ref, "changed", "stage", "open", "won", 2)
    assert change_key_parts(by_rule["latest"], ref, net) == (str(ref), event_key(net))
    assert ("latest", make_key("latest", 0, str(ref), event_key(net))) in keys
    # and without keys, each event is hashed: the keys ingest gives are these
    plain = plan_change(rules, ref, fields, {}, {"stage": "open"}, steps, now)
    real = [event_key(e) for e in steps]
    again = plan_change(rules, ref, fields, {}, {"stage": "open"}, steps, now, real)
    assert [a.key for a in plain.actions] == [a.key for a in again.actions]
