"""Which changes fire a rule: from/to lists, value aliases, once_per_object, history."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncd.clock import FakeClock
from syncd.ingest import Ingestor, RulesHolder
from syncd.mapping.loader import load_rules
from syncd.mapping.planner import Change
from syncd.mapping.planner import explain_change as evaluate_change
from syncd.mapping.rules import RuleSet
from syncd.model import ObjectRef, Observation
from syncd.store.db import open_store
from syncd.store.schema import actions

DEAL = ObjectRef("localdb", "deal", "42")


def fired(ruleset: RuleSet, old: Any, new: Any, **extra: Any) -> list[str]:
    change = Change(DEAL, {"stage": new, **extra}, {"stage": old})
    return [v.rule_id for v in evaluate_change(ruleset, change) if v.fired]


def test_from_and_to_lists(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: late-stage-win
            when:
              source: localdb
              object: deal
              field: stage
              from: [negotiation, contract]
              to: [won, signed]
            do:
              - localdb.record: {title: x}
    """)
    ruleset = load_ok()
    assert fired(ruleset, "negotiation", "won") == ["late-stage-win"]
    assert fired(ruleset, "contract", "signed") == ["late-stage-win"]
    assert fired(ruleset, "lead", "won") == []
    assert fired(ruleset, "contract", "lost") == []


def test_single_from_and_open_to(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: left-won
            when: {source: localdb, object: deal, field: stage, from: won}
            do:
              - localdb.record: {title: x}
    """)
    ruleset = load_ok()
    assert fired(ruleset, "won", "lost") == ["left-won"]
    assert fired(ruleset, "won", "churned") == ["left-won"]
    assert fired(ruleset, "lost", "won") == []


def test_disabled_rule_never_fires(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: off
            enabled: false
            when: {source: localdb, object: deal, field: stage}
            do:
              - localdb.record: {title: x}
    """)
    (verdict,) = evaluate_change(load_ok(), Change(DEAL, {"stage": "b"}, {"stage": "a"}))
    assert (verdict.fired, verdict.reason) == (False, "rule disabled")


def test_trigger_and_condition_accept_a_label_for_an_aliased_field(
    write_mapping, mapping_dir: Path
) -> None:
    write_mapping("""
        rules:
          - id: won
            when: {source: localdb, object: deal, field: stage, to: Closed Won}
            if:
              stage: {in: [Closed Won, Closed Lost]}
            do:
              - localdb.record: {title: x}
            examples:
              - object: {stage: closedwon}
                previous: {stage: qualifiedtobuy}
                expect: [{action: localdb.record}]
    """)
    asked: list[tuple[str, str, str]] = []

    def aliases(source: str, obj: str, field: str) -> dict[str, str]:
        asked.append((source, obj, field))
        return {"Closed Won": "closedwon", "Closed Lost": "closedlost"}

    ruleset = load_rules([mapping_dir], aliases=aliases)
    assert asked == [("localdb", "deal", "stage")]
    assert fired(ruleset, "qualifiedtobuy", "closedwon") == ["won"]
    assert fired(ruleset, "qualifiedtobuy", "closedlost") == []


def test_conditions_see_previous_event_context_and_the_change_time(write_mapping, load_ok) -> None:
    write_mapping("""
        rules:
          - id: stale-renewal
            when: {source: localdb, object: deal, field: stage}
            if:
              previous.amount: {lt: 100}
              event.from: {ne: lost}
              company.country: {in: [FR, BE]}
              signed_on: {before: now-30d}
            do:
              - localdb.record: {title: x}
    """)
    ruleset = load_ok()

    def fires(old_stage: str, country: str, signed_on: str) -> bool:
        change = Change(
            DEAL,
            {"stage": "won", "signed_on": signed_on},
            {"stage": old_stage, "amount": 50},
            {"company": {"country": country}},
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
        (verdict,) = evaluate_change(ruleset, change)
        return verdict.fired

    assert fires("open", "FR", "2026-01-15")
    assert not fires("lost", "FR", "2026-01-15")
    assert not fires("open", "DE", "2026-01-15")
    assert not fires("open", "FR", "2026-02-15")  # only 14 days before the change


ONCE_RULES = """
    rules:
      - id: every-win
        when: {source: localdb, object: deal, field: stage, to: won}
        do:
          - localdb.record: {title: x}
      - id: first-win
        when: {source: localdb, object: deal, field: stage, to: won}
        once_per_object: true
        do:
          - localdb.record: {title: x}
"""


def test_once_per_object_plans_one_key_per_object(write_mapping, load_ok) -> None:
    write_mapping(ONCE_RULES)
    ruleset = load_ok()

    def keys(old: str, ref: ObjectRef = DEAL) -> dict[str, str]:
        verdicts = evaluate_change(ruleset, Change(ref, {"stage": "won"}, {"stage": old}))
        return {v.rule_id: v.actions[0].key for v in verdicts}

    first, again = keys("open"), keys("lost")
    assert first["first-win"] == again["first-win"]
    assert first["every-win"] != again["every-win"]
    other = keys("open", ObjectRef("localdb", "deal", "43"))
    assert other["first-win"] != first["first-win"]


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def ingest(tmp_path: Path, write_mapping, mapping_dir: Path):
    """ingest(rules_yaml) -> feed(observation, fire=True); actions() counts per rule."""
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    holder = RulesHolder(RuleSet([]))
    # localdb versions are counters: it is not baselined at go-live (as in the engine)
    ingestor = Ingestor(store, holder, FakeClock(NOW), frozenset({"localdb"}))

    class Bench:
        def rules(self, text: str) -> None:
            write_mapping(text)
            holder.current = load_rules([mapping_dir])

        def feed(self, obs: Observation, fire: bool = True) -> None:
            ingestor.ingest([obs], fire=fire)

        def actions(self) -> Counter[str]:
            with store.engine.connect() as conn:
                return Counter(r.rule_id for r in conn.execute(select(actions.c.rule_id)))

    yield Bench()
    store.engine.dispose()


def deal(stage: str, version: int, history: list[tuple[int, str]] | None = None) -> Observation:
    return Observation(DEAL, {"stage": stage}, version, {"stage": history or [(version, stage)]})


HISTORY_RULES = """
    rules:
      - id: passed-qualified
        when: {source: localdb, object: deal, field: stage, to: qualified}
        do:
          - localdb.record: {title: x}
      - id: now-qualified
        when: {source: localdb, object: deal, field: stage, to: qualified, history: latest}
        do:
          - localdb.record: {title: x}
      - id: any-move
        when: {source: localdb, object: deal, field: stage, history: latest}
        do:
          - localdb.record: {title: x}
      - id: every-step
        when: {source: localdb, object: deal, field: stage}
        do:
          - localdb.record: {title: x}
"""


def test_history_all_sees_every_step_and_latest_only_the_net_change(ingest) -> None:
    ingest.rules(HISTORY_RULES)
    ingest.feed(deal("lead", 1), fire=False)
    # between two observations the deal went lead -> qualified -> proposal
    ingest.feed(deal("proposal", 3, [(1, "lead"), (2, "qualified"), (3, "proposal")]))
    assert ingest.actions() == {"passed-qualified": 1, "any-move": 1, "every-step": 2}


def test_history_latest_fires_on_the_net_change(ingest) -> None:
    ingest.rules(HISTORY_RULES)
    ingest.feed(deal("lead", 1), fire=False)
    ingest.feed(deal("qualified", 3, [(1, "lead"), (2, "proposal"), (3, "qualified")]))
    assert ingest.actions() == {
        "passed-qualified": 1,
        "now-qualified": 1,
        "any-move": 1,
        "every-step": 2,
    }


def test_history_latest_ignores_a_round_trip(ingest) -> None:
    ingest.rules(HISTORY_RULES)
    ingest.feed(deal("lead", 1), fire=False)
    ingest.feed(deal("lead", 3, [(1, "lead"), (2, "qualified"), (3, "lead")]))
    assert ingest.actions() == {"passed-qualified": 1, "every-step": 2}


def test_once_per_object_fires_once_across_changes(ingest) -> None:
    ingest.rules(ONCE_RULES)
    ingest.feed(deal("open", 1), fire=False)
    ingest.feed(deal("won", 2))
    ingest.feed(deal("lost", 3))
    ingest.feed(deal("won", 4))
    assert ingest.actions() == {"every-win": 2, "first-win": 1}


def test_a_repeated_observation_plans_nothing_new(ingest) -> None:
    ingest.rules(ONCE_RULES)
    ingest.feed(deal("open", 1), fire=False)
    ingest.feed(deal("won", 2))
    ingest.feed(deal("won", 2))
    assert ingest.actions() == {"every-win": 1, "first-win": 1}


def test_a_late_older_observation_plans_nothing(ingest) -> None:
    ingest.rules(HISTORY_RULES)
    ingest.feed(deal("lead", 1), fire=False)
    ingest.feed(deal("proposal", 3))
    before = ingest.actions()
    ingest.feed(deal("qualified", 2))  # a delayed webhook delivery
    assert ingest.actions() == before == {"any-move": 1, "every-step": 1}
