"""The scheduler on a SQLite memory store: dates read from snapshots, firings planned once."""

from __future__ import annotations

from pathlib import Path

from syncd.clock import FakeClock
from syncd.ingest import RulesHolder
from syncd.mapping.loader import load_rules
from syncd.scheduler import Scheduler
from syncd.store import actions, events
from syncd.store.db import Store
from tests.helpers import write_rules

# FakeClock starts 2026-01-05 09:00 UTC: 60 days before 2026-03-06 at 09:00 Paris is due.
RULES = """
rules:
  - id: expiry-reminder
    when:
      source: localdb
      object: item
      date: end_date
      offset: -60d
      at: "09:00"
      timezone: Europe/Paris
    do:
      - localdb.record:
          title: "Expiring {{ item.name }}"
"""


def snapshot(store: Store, object_id: str, end_date: str, deleted: bool = False) -> None:
    with store.tx() as conn:
        events.save_snapshot(
            store,
            conn,
            {
                "source": "localdb",
                "object_type": "item",
                "object_id": object_id,
                "version": 1,
                "fields": {"name": object_id.title(), "end_date": end_date},
                "context": {},
                "entered": {},
                "deleted": deleted,
                "updated_at": 1,
            },
        )


def test_due_date_fires_once_per_object_and_date(tmp_path: Path) -> None:
    store, clock = Store.in_memory(), FakeClock()
    rules = RulesHolder(load_rules([write_rules(tmp_path / "mappings", RULES)]))
    scheduler = Scheduler(store, rules, {}, clock)
    snapshot(store, "ocean", "2026-03-06")  # due now
    snapshot(store, "river", "2026-06-01")  # not yet
    snapshot(store, "lake", "2026-03-06", deleted=True)  # gone at its source
    assert scheduler.tick() == 1
    assert scheduler.tick() == 0  # a second tick (or replica) does not fire it again
    (row,) = actions.list_actions(store)
    assert (row.rule_id, row.object_id, row.params) == (
        "expiry-reminder",
        "ocean",
        {"title": "Expiring Ocean"},
    )
    snapshot(store, "ocean", "2026-03-07")  # the date moved: a new firing when due
    clock.advance(86_400)
    assert scheduler.tick() == 1
