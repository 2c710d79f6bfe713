"""A rule whose template or condition blows up fails its own actions (dead, with the reason)
and never the ingest of the object or the other rules (issue 14, item 8)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from syncd.clock import FakeClock
from syncd.mapping import limits
from syncd.store.schema import actions, snapshots
from tests.helpers import make_engine

POISON_RULES = """
rules:
  - id: overflow
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record: {title: "{{ 10 ** 400 * 1.0 }}"}
  - id: bad-date-condition
    when: {source: localdb, object: item, field: stage, to: done}
    if: {ends: {before: now}}
    do:
      - localdb.record: {title: "ended"}
  - id: endless-loop
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record:
          title: >-
            {% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000)
            %}{% endfor %}{% endfor %}{% endfor %}x
  - id: huge-title
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record: {title: "{{ 'a' * 10**9 }}"}
  - id: good
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record: {title: "Done: {{ item.name }}"}
"""


def _actions(engine) -> dict[str, dict]:
    with engine.store.engine.connect() as conn:
        return {r["rule_id"]: dict(r) for r in conn.execute(select(actions)).mappings()}


def test_poison_rules_go_dead_with_reasons_and_the_good_rule_acts(
    tmp_path: Path, store_url: str
) -> None:
    engine = make_engine(tmp_path, store_url, FakeClock(), rules=POISON_RULES)
    remote = engine.connectors["localdb"].remote
    # a CRM "date" far out of range: the condition raises instead of answering
    remote.put("item", "a", name="Ocean", stage="done", ends="99999999999999999999")
    started = time.monotonic()
    engine.run_once()
    assert time.monotonic() - started < limits.TIME_BUDGET_SECONDS + 8

    rows = _actions(engine)
    assert rows["good"]["status"] == "done"
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Ocean"]
    assert rows["overflow"]["status"] == "dead"
    assert "OverflowError" in rows["overflow"]["last_error"]
    assert rows["bad-date-condition"]["status"] == "dead"
    assert "condition error" in rows["bad-date-condition"]["last_error"]
    assert rows["endless-loop"]["status"] == "dead"
    assert "budget" in rows["endless-loop"]["last_error"]
    assert rows["huge-title"]["status"] == "dead"
    assert "limit" in rows["huge-title"]["last_error"]
    with engine.store.engine.connect() as conn:  # the object's ingest was committed
        snap = conn.execute(select(snapshots)).mappings().one()
    assert snap["fields"]["stage"] == "done"
    engine.close()


CRON_RULES = """
rules:
  - id: cron-overflow
    when:
      cron: "0 9 * * *"
      for_each: {source: localdb, object: item, query: {}}
    do:
      - localdb.record: {title: "{{ 10 ** 400 * 1.0 }}"}
  - id: cron-fee-check
    when:
      cron: "0 9 * * *"
      for_each: {source: localdb, object: item, query: {}}
    if: {item.fee: {gt: 100}}
    do:
      - localdb.record: {title: "Big fee: {{ item.name }}"}
  - id: cron-good
    when:
      cron: "0 9 * * *"
      for_each: {source: localdb, object: item, query: {}}
    do:
      - localdb.record: {title: "Daily: {{ item.name }}"}
"""


def test_poison_time_rules_fail_alone(tmp_path: Path, store_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=1)
    clock = FakeClock(start)
    engine = make_engine(tmp_path, store_url, clock, rules=CRON_RULES)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Ocean", fee="about nine hundred")  # not a number
    remote.put("item", "b", name="Lab", fee=900)
    engine.run_once()  # first sight of the cron rules: nothing fires
    clock.advance(hours=1)
    engine.run_once()

    with engine.store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(actions)).mappings()]
    by_rule: dict[str, list[dict]] = {}
    for row in rows:
        by_rule.setdefault(row["rule_id"], []).append(row)
    assert sorted(e["params"]["title"] for e in remote.effects()) == [
        "Big fee: Lab",
        "Daily: Lab",
        "Daily: Ocean",
    ]
    assert [r["status"] for r in by_rule["cron-overflow"]] == ["dead", "dead"]
    assert all("OverflowError" in r["last_error"] for r in by_rule["cron-overflow"])
    (bad_fee,) = [r for r in by_rule["cron-fee-check"] if r["status"] == "dead"]
    assert bad_fee["object_id"] == "a" and "condition error" in bad_fee["last_error"]
    engine.close()
