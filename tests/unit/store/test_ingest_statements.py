"""An ingest batch reads its objects' snapshots together and writes its decision traces
together: the statements per object are the ingest's cost (issue 17), and an object seen
twice in one batch still diffs against its first sighting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from syncd.clock import FakeClock
from syncd.ingest import Ingestor, RulesHolder
from syncd.mapping.loader import load_rules
from syncd.model import ObjectRef, Observation
from syncd.store import actions
from syncd.store.db import Store
from syncd.store.schema import events

RULES = """\
rules:
  - id: won
    when: {source: localdb, object: deal, field: stage, to: won}
    do:
      - localdb.record: {title: "Won: {{ deal.name }}"}
"""


def _ingestor(tmp_path: Path) -> tuple[Store, Ingestor]:
    (tmp_path / "rules.yaml").write_text(RULES)
    store = Store.in_memory()
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    rules = RulesHolder(load_rules([tmp_path]))
    return store, Ingestor(store, rules, clock, frozenset({"localdb"}))


def _deal(n: int, stage: str, version: int) -> Observation:
    return Observation(
        ObjectRef("localdb", "deal", str(n)), {"stage": stage, "name": f"D{n}"}, version
    )


def _statements(store: Store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(sql.split(None, 1)[0].upper())

    return seen


def test_a_batch_takes_a_few_statements_whatever_its_size(tmp_path: Path) -> None:
    store, ingestor = _ingestor(tmp_path)
    ingestor.ingest([_deal(n, "open", 1) for n in range(60)])
    statements = _statements(store)
    result = ingestor.ingest([_deal(n, "won", 2) for n in range(20)])
    assert (result.events, result.actions) == (20, 20)
    small = list(statements)
    statements.clear()
    result = ingestor.ingest([_deal(n, "won", 2) for n in range(20, 60)])
    assert (result.events, result.actions) == (40, 40)
    # snapshots read; events, snapshots, origins, actions, traces written: a statement or two
    # each (a batch goes in chunks of 64, 32 ... rows: 20 = 16 + 4, 40 = 32 + 8)
    assert len(small) == len(statements) <= 12, (small, statements)
    assert small.count("INSERT") == 8, small
    assert len(actions.list_actions(store)) == 60


def test_a_batch_stores_each_event_and_action_once(tmp_path: Path) -> None:
    """Keys met before, or twice in one batch, are neither stored nor counted again."""
    store, ingestor = _ingestor(tmp_path)
    ingestor.ingest([_deal(n, "open", 1) for n in range(3)])
    first = ingestor.ingest([_deal(0, "won", 2), _deal(1, "won", 2)])
    assert (first.events, first.actions) == (2, 2)
    stored = _event_count(store)
    # deal 0 again at the same version is stale; deal 2 is new work, sent twice
    again = ingestor.ingest([_deal(0, "won", 2), _deal(2, "won", 2), _deal(2, "won", 2)])
    assert (again.events, again.actions, again.stale) == (1, 1, 2)
    assert sorted(r.object_id for r in actions.list_actions(store)) == ["0", "1", "2"]
    assert _event_count(store) == stored + 1


def _event_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)


def test_an_object_twice_in_a_batch_diffs_against_its_first_sighting(tmp_path: Path) -> None:
    store, ingestor = _ingestor(tmp_path)
    ingestor.ingest([_deal(1, "open", 1), _deal(2, "open", 1)])
    result = ingestor.ingest([_deal(1, "won", 2), _deal(2, "won", 2), _deal(1, "won", 3)])
    # the second sighting of deal 1 is compared with the first: nothing new
    assert (result.events, result.actions, result.stale) == (2, 2, 1)
    again = ingestor.ingest([_deal(1, "lost", 4), _deal(1, "won", 5), _deal(1, "won", 5)])
    assert (again.events, again.actions, again.stale) == (2, 1, 1)  # won -> lost -> won
    assert sorted(r.object_id for r in actions.list_actions(store)) == ["1", "1", "2"]
