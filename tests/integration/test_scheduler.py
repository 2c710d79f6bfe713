"""Time triggers end to end on the localdb connector, with a fake clock: dated rules
("60 days before end_date at 09:00 Europe/Paris"), "N days after it entered a stage", and
cron rules with `for_each` / `collect`.

The remote's versions are its "last modified" times (epoch ms); `put_at` keeps that clock in
step with the fake one, so "when was this date set" compares with the same time line.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from syncd.clock import FakeClock, to_ms
from syncd.config import SchedulerSection
from syncd.engine import Engine
from syncd.store.schema import actions
from syncd_sandbox.localdb import LocalDbConnector, LocalDbRemote, LocalDbSettings
from tests.helpers import make_config, write_rules

PARIS = ZoneInfo("Europe/Paris")

EXPIRY_RULE = """
rules:
  - id: expiry-reminder
    when:
      source: localdb
      object: item
      date: end_date
      offset: -60d
      at: "09:00"
      timezone: Europe/Paris
      catch_up: {catch_up}
    do:
      - localdb.record:
          title: "Expiring {{{{ item.name }}}} on {{{{ item.end_date }}}}"
"""


def build_engine(
    tmp_path: Path, store_url: str, clock: FakeClock, rules: str, grace_hours: float = 24
) -> Engine:
    """An engine like tests.helpers.make_engine, with the scheduler's grace configurable.
    Built again on the same tmp_path and store_url, it is a restart."""
    rules_dir = write_rules(tmp_path / "mappings", rules)
    config = make_config(tmp_path, store_url, rules_dir)
    config.scheduler = SchedulerSection(grace_hours=grace_hours)
    settings = LocalDbSettings(path=str(tmp_path / "remote.sqlite3"))
    config.connectors["localdb"] = settings
    return Engine(config, clock, connectors={"localdb": LocalDbConnector(settings, clock=clock)})


def put_at(remote: LocalDbRemote, clock: FakeClock, type_: str, id_: str, **fields: object) -> None:
    """Change an object at the remote "now" by the fake clock (its version = that instant)."""
    with sqlite3.connect(remote.path) as db:
        db.execute("UPDATE seq SET n = max(n, ?)", (to_ms(clock.now()),))
    remote.put(type_, id_, **fields)


def titles(remote: LocalDbRemote) -> Counter[str]:
    return Counter(e["params"]["title"] for e in remote.effects())


def action_rows(engine: Engine, rule_id: str) -> list[dict[str, object]]:
    with engine.store.engine.connect() as conn:
        query = select(actions).where(actions.c.rule_id == rule_id).order_by(actions.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def start_of_test() -> datetime:
    """A fake "today" at or after the real time, so the remote's real-time versions never
    run ahead of the fake clock."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=2)


def next_dst_switch(after: date) -> date:
    """The first day whose noon has another UTC offset in Paris than the day before."""
    day = after
    while True:
        nxt = day + timedelta(days=1)
        if _noon_offset(nxt) != _noon_offset(day):
            return nxt
        day = nxt


def _noon_offset(day: date) -> timedelta | None:
    return datetime.combine(day, time(12), tzinfo=PARIS).utcoffset()


def paris_nine(day: date) -> datetime:
    return datetime.combine(day, time(9), tzinfo=PARIS).astimezone(UTC)


class Expiry:
    """An end date whose reminder day lies across a DST switch from the fake "today"."""

    def __init__(self) -> None:
        self.today = start_of_test()
        self.fire_day = next_dst_switch(self.today.astimezone(PARIS).date()) + timedelta(days=3)
        self.end_date = self.fire_day + timedelta(days=60)
        self.fire_at = paris_nine(self.fire_day)
        self.title = f"Expiring Ocean on {self.end_date.isoformat()}"
        # The point of the exercise: 09:00 Paris is another UTC hour on the fire day.
        assert (
            self.today.astimezone(PARIS).utcoffset() != self.fire_at.astimezone(PARIS).utcoffset()
        )


# -- "60 days before end_date at 09:00 Europe/Paris" ----------------------------------------


def test_date_rule_fires_once_at_local_nine_across_dst_and_rearms(
    tmp_path: Path, store_url: str
) -> None:
    plan = Expiry()
    clock = FakeClock(plan.today)
    engine = build_engine(tmp_path, store_url, clock, EXPIRY_RULE.format(catch_up="false"))
    remote = engine.connectors["localdb"].remote
    put_at(remote, clock, "item", "a", name="Ocean", end_date=plan.end_date.isoformat())
    engine.run_once()
    assert remote.effects() == []

    # 09:00 at today's UTC offset is an hour off on the fire day: no firing before 09:00
    # Paris, whichever side of the switch the wrong hour falls.
    today_offset = timezone(plan.today.astimezone(PARIS).utcoffset() or timedelta(0))
    wrong_hour = datetime.combine(plan.fire_day, time(9), tzinfo=today_offset).astimezone(UTC)
    early = {plan.fire_at - timedelta(minutes=1)}
    if wrong_hour < plan.fire_at:
        early.add(wrong_hour)
    for instant in sorted(early):
        clock.set(instant)
        engine.run_once()
        assert remote.effects() == [], f"fired at {instant.astimezone(PARIS)}"

    clock.set(plan.fire_at)
    engine.run_once()
    assert titles(remote) == {plan.title: 1}

    for _ in range(3):  # later ticks: nothing new
        clock.advance(hours=1)
        engine.run_once()
    engine.close()
    engine = build_engine(tmp_path, store_url, clock, EXPIRY_RULE.format(catch_up="false"))
    engine.run_once()  # restart: nothing new
    assert titles(remote) == {plan.title: 1}

    # The date moves a week later: the rule re-arms, for the new day at 09:00 Paris.
    new_end = plan.end_date + timedelta(days=7)
    put_at(remote, clock, "item", "a", end_date=new_end.isoformat())
    engine.run_once()
    new_fire = paris_nine(new_end - timedelta(days=60))
    clock.set(new_fire - timedelta(minutes=1))
    engine.run_once()
    assert sum(titles(remote).values()) == 1
    clock.set(new_fire)
    engine.run_once()
    engine.run_once()
    assert titles(remote) == {plan.title: 1, f"Expiring Ocean on {new_end.isoformat()}": 1}
    assert [r["status"] for r in action_rows(engine, "expiry-reminder")] == ["done", "done"]
    engine.close()


def test_downtime_over_the_fire_time_fires_once_within_grace(
    tmp_path: Path, store_url: str
) -> None:
    plan = Expiry()
    clock = FakeClock(plan.today)
    rules = EXPIRY_RULE.format(catch_up="false")
    engine = build_engine(tmp_path, store_url, clock, rules, grace_hours=12)
    remote = engine.connectors["localdb"].remote
    put_at(remote, clock, "item", "a", name="Ocean", end_date=plan.end_date.isoformat())
    engine.run_once()
    engine.close()

    clock.set(plan.fire_at + timedelta(hours=11))  # down from "today" until 11 h after
    engine = build_engine(tmp_path, store_url, clock, rules, grace_hours=12)
    engine.run_once()
    clock.advance(hours=1)
    engine.run_once()
    assert titles(remote) == {plan.title: 1}
    engine.close()


def test_downtime_longer_than_grace_does_not_fire(tmp_path: Path, store_url: str) -> None:
    plan = Expiry()
    clock = FakeClock(plan.today)
    rules = EXPIRY_RULE.format(catch_up="false")
    engine = build_engine(tmp_path, store_url, clock, rules, grace_hours=12)
    remote = engine.connectors["localdb"].remote
    put_at(remote, clock, "item", "a", name="Ocean", end_date=plan.end_date.isoformat())
    engine.run_once()
    engine.close()

    clock.set(plan.fire_at + timedelta(hours=13))
    engine = build_engine(tmp_path, store_url, clock, rules, grace_hours=12)
    engine.run_once()
    assert remote.effects() == []
    assert action_rows(engine, "expiry-reminder") == []
    engine.close()


def _move_into_the_past(tmp_path: Path, store_url: str, catch_up: bool) -> Counter[str]:
    """An item dated far ahead; at noon Paris its date moves so that the reminder time
    (09:00 today) is already past. Returns the effects after a few ticks."""
    plan = Expiry()
    clock = FakeClock(plan.today)
    engine = build_engine(
        tmp_path, store_url, clock, EXPIRY_RULE.format(catch_up=str(catch_up).lower())
    )
    remote = engine.connectors["localdb"].remote
    put_at(remote, clock, "item", "a", name="Ocean", end_date=plan.end_date.isoformat())
    engine.run_once()
    day = plan.today.astimezone(PARIS).date() + timedelta(days=5)
    clock.set(datetime.combine(day, time(12), tzinfo=PARIS).astimezone(UTC))
    engine.run_once()
    moved_to = day + timedelta(days=60)  # reminder: 09:00 Paris today, three hours ago
    put_at(remote, clock, "item", "a", end_date=moved_to.isoformat())
    for _ in range(3):
        engine.run_once()
        clock.advance(minutes=30)
    found = titles(remote)
    engine.close()
    return found


def test_date_moved_into_the_past_does_not_fire(tmp_path: Path, store_url: str) -> None:
    assert _move_into_the_past(tmp_path, store_url, catch_up=False) == {}


def test_date_moved_into_the_past_fires_once_with_catch_up(tmp_path: Path, store_url: str) -> None:
    found = _move_into_the_past(tmp_path, store_url, catch_up=True)
    assert sum(found.values()) == 1, found


# -- "7 days after it entered qualified, unless it moved on" ---------------------------------

FOLLOW_UP_RULE = """
rules:
  - id: qualified-follow-up
    when:
      source: localdb
      object: item
      entered: {field: stage, value: qualified}
      offset: 7d
      at: null
    if: {stage: qualified}
    do:
      - localdb.record:
          title: "Follow up {{ item.name }}"
"""


def test_seven_days_after_entering_a_stage_unless_it_moved_on(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock(start_of_test())
    engine = build_engine(tmp_path, store_url, clock, FOLLOW_UP_RULE)
    remote = engine.connectors["localdb"].remote
    entered = clock.now()
    for name in ("stays", "moves-on", "comes-back"):
        put_at(remote, clock, "item", name, name=name, stage="qualified")
    engine.run_once()

    clock.advance(days=2)
    put_at(remote, clock, "item", "moves-on", stage="proposal")
    put_at(remote, clock, "item", "comes-back", stage="proposal")
    engine.run_once()
    clock.advance(days=1)
    reentered = clock.now()
    put_at(remote, clock, "item", "comes-back", stage="qualified")
    engine.run_once()

    clock.set(entered + timedelta(days=7) - timedelta(minutes=1))
    engine.run_once()
    assert remote.effects() == []
    clock.set(entered + timedelta(days=7, seconds=1))
    engine.run_once()
    assert titles(remote) == {"Follow up stays": 1}

    # Re-entering the stage starts the seven days again.
    clock.set(reentered + timedelta(days=7, seconds=1))
    engine.run_once()
    clock.advance(days=1)
    engine.run_once()
    assert titles(remote) == {"Follow up stays": 1, "Follow up comes-back": 1}
    engine.close()


# -- quarterly cron over 50 objects ------------------------------------------------------------

QUARTERLY_RULES = """
rules:
  - id: quarterly-epic-review
    when:
      cron: "0 9 1 */3 *"
      for_each: {source: localdb, object: item, query: {where: {kind: epic}}}
    do:
      - localdb.record:
          title: "Review {{ item.name }} ({{ trigger.instant | date('%Y-%m') }})"
  - id: quarterly-digest
    when:
      cron: "0 9 1 */3 *"
      collect: {source: localdb, object: item, query: {where: {kind: epic}}}
    do:
      - localdb.record:
          title: "Digest of {{ items | length }} epics"
          body: "{% for i in items %}{{ i.id }}\\n{% endfor %}"
"""


def next_quarter_start(after: datetime) -> datetime:
    """09:00 UTC on the next 1 January / April / July / October after `after`."""
    year, month = after.year, after.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if month in (1, 4, 7, 10):
            return datetime(year, month, 1, 9, tzinfo=UTC)


def test_quarterly_cron_for_each_and_collect_across_restarts(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock(start_of_test())
    engine = build_engine(tmp_path, store_url, clock, QUARTERLY_RULES)
    remote = engine.connectors["localdb"].remote
    epics = [f"epic-{i:02d}" for i in range(50)]
    for name in epics:
        put_at(remote, clock, "item", name, name=name, kind="epic")
    for i in range(5):  # not epics: never reviewed, never in the digest
        put_at(remote, clock, "item", f"task-{i}", name=f"task-{i}", kind="task")
    engine.run_once()
    assert remote.effects() == []

    quarter = next_quarter_start(clock.now())
    clock.set(quarter - timedelta(minutes=1))
    engine.run_once()
    assert remote.effects() == []
    clock.set(quarter)
    engine.run_once()
    stamp = quarter.strftime("%Y-%m")
    assert titles(remote) == {
        **{f"Review {name} ({stamp})": 1 for name in epics},
        "Digest of 50 epics": 1,
    }
    (digest,) = remote.effects()[-1:]
    assert sorted(digest["params"]["body"].split()) == epics
    assert len(action_rows(engine, "quarterly-epic-review")) == 50
    assert len(action_rows(engine, "quarterly-digest")) == 1

    engine.close()  # restart at the same instant, then tick on through the quarter
    engine = build_engine(tmp_path, store_url, clock, QUARTERLY_RULES)
    for _ in range(3):
        engine.run_once()
        clock.advance(hours=6)
    assert len(action_rows(engine, "quarterly-epic-review")) == 50
    assert sum(titles(remote).values()) == 51

    following = next_quarter_start(quarter)
    clock.set(following)
    engine.run_once()
    engine.run_once()
    next_stamp = following.strftime("%Y-%m")
    found = titles(remote)
    assert all(found[f"Review {name} ({next_stamp})"] == 1 for name in epics)
    assert found["Digest of 50 epics"] == 2
    assert sum(found.values()) == 102
    assert len(action_rows(engine, "quarterly-epic-review")) == 100
    assert {r["status"] for r in action_rows(engine, "quarterly-epic-review")} == {"done"}
    engine.close()
