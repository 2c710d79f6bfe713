"""The queries that run for every webhook, ingested object or performed action use an index:
their cost must not grow with the history kept (issue 17: a daemon runs for months)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncd.store import actions, events, inbox, origins
from syncd.store.db import Store

OBJECT = {"source": "hubspot", "object_type": "deal", "object_id": "7"}
DUE = {"now": 1, "limit": 10, "offset": 0, **actions._ACTIVE_PARAMS}
HOT_QUERIES = {
    "claim due actions": (actions._DUE, {**DUE, "busy": ["jira"]}),
    "claim due actions, none busy": (actions._DUE, {**DUE, "busy": []}),
    "claim due actions, on the driver": (actions._due_direct(1)[0], {**DUE, "busy_0": "jira"}),
    "claim due deliveries": (
        inbox._DUE,
        {"pending": "pending", "now": 1, "limit": 10, "offset": 0},
    ),
    "snapshot of an object": (events._SNAPSHOT, OBJECT),
    "version of an event": (events._EVENT_VERSION, {"event_id": 1}),
    "action that created an object": (
        origins.CREATOR,
        {"connector": "github", "external_id": "org/repo#7"},
    ),
    "snapshot behind an origin": (origins._SNAPSHOT_VIEW, OBJECT),
}


def _plan(store: Store, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=store.engine.dialect)
    state = compiled.construct_expanded_state(params)
    positional = tuple(state.parameters[name] for name in state.positiontup or ())
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {state.statement}", positional).all()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("name", sorted(HOT_QUERIES))
def test_a_hot_query_reads_no_whole_table(name: str) -> None:
    statement, params = HOT_QUERIES[name]
    plan = _plan(Store.in_memory(), statement, params)
    assert not re.search(r"SCAN (actions|events|snapshots|inbox)\b", plan), plan


def test_the_origin_lookup_at_every_ingest_searches_its_index() -> None:
    store = Store.in_memory()
    plan = _plan(store, origins.CREATOR, {"connector": "github", "external_id": "org/repo#7"})
    assert "USING INDEX ix_actions_external" in plan, plan
