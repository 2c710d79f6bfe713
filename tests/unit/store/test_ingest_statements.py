"""An ingest batch reads its objects' snapshots together and writes its decision traces
together: the statements per object are the ingest's cost (issue 17), and an object seen
twice in one batch still diffs against its first sighting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from syncd.clock import FakeClock
from syncd.ingest import Ingestor, RulesHolder
from syncd.mapping.loader import load_rules
from syncd.model import ObjectRef, Observation
from syncd.store import actions
from syncd.store.db import Store

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


def test_a_batch_reads_its_snapshots_and_writes_its_traces_in_one_statement_each(
    tmp_path: Path,
) -> None:
    store, ingestor = _ingestor(tmp_path)
    ingestor.ingest([_deal(n, "open", 1) for n in range(20)])
    statements = _statements(store)
    result = ingestor.ingest([_deal(n, "won", 2) for n in range(20)])
    assert (result.events, result.actions) == (20, 20)
    # per object: its event, its action, its origin and its snapshot; then the batch's two
    per_object = (len(statements) - 2) / 20
    assert per_object <= 4.2, statements
    assert len(actions.list_actions(store)) == 20


def test_an_object_twice_in_a_batch_diffs_against_its_first_sighting(tmp_path: Path) -> None:
    store, ingestor = _ingestor(tmp_path)
    ingestor.ingest([_deal(1, "open", 1), _deal(2, "open", 1)])
    result = ingestor.ingest([_deal(1, "won", 2), _deal(2, "won", 2), _deal(1, "won", 3)])
    # the second sighting of deal 1 is compared with the first: nothing new
    assert (result.events, result.actions, result.stale) == (2, 2, 1)
    again = ingestor.ingest([_deal(1, "lost", 4), _deal(1, "won", 5), _deal(1, "won", 5)])
    assert (again.events, again.actions, again.stale) == (2, 1, 1)  # won -> lost -> won
    assert sorted(r.object_id for r in actions.list_actions(store)) == ["1", "1", "2"]
