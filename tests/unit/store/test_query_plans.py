"""The queries that run for every ingested object or performed action use an index: their
cost must not grow with the history kept (issue 17: a daemon runs for months)."""

from __future__ import annotations

from typing import Any

from syncd.store import origins
from syncd.store.db import Store


def _plan(store: Store, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=store.engine.dialect)
    values = compiled.construct_params(params)
    positional = tuple(values[name] for name in compiled.positiontup)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
    return " | ".join(str(row[-1]) for row in rows)


def test_the_origin_lookup_at_every_ingest_searches_an_index() -> None:
    store = Store.in_memory()
    plan = _plan(store, origins.CREATOR, {"connector": "github", "external_id": "org/repo#7"})
    assert "USING INDEX ix_actions_external" in plan, plan
    assert "SCAN" not in plan, plan
