"""The store's batch writes (one statement for many rows, issue 17) on SQLite, and on
PostgreSQL when SYNCD_TEST_DATABASE_URL is set: a key stored before, or repeated in the
same batch, is stored once and left out of the answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from syncd.store import actions, events
from syncd.store.db import Store
from syncd.store.schema import action_attempts, snapshots
from syncd.store.schema import events as events_table


def _event(key: str, new: Any) -> dict[str, Any]:
    return {
        "event_key": key,
        "source": "s",
        "object_type": "t",
        "object_id": "1",
        "kind": "changed",
        "field": "f",
        "old": None,
        "new": new,
        "version": 1,
        "created_at": 1,
    }


def _action(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "rule_id": "r",
        "connector": "ledger",
        "action": "record",
        "params": {"title": key},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": 0,
        "created_at": 0,
        "updated_at": 0,
    }


def _snapshot(object_id: str, version: int) -> dict[str, Any]:
    return {
        "source": "s",
        "object_type": "t",
        "object_id": object_id,
        "version": version,
        "fields": {"v": version},
        "context": {},
        "entered": {},
        "deleted": False,
        "updated_at": version,
    }


def test_events_are_stored_once_by_key(store: Store) -> None:
    with store.tx() as conn:
        first = events.add_events(store, conn, [_event("a", 1), _event("b", {"x": [1]})])
    assert sorted(first) == ["a", "b"]
    with store.tx() as conn:
        again = events.add_events(
            store, conn, [_event("b", 2), _event("c", 3), _event("c", 4), _event("d", None)]
        )
        assert events.add_events(store, conn, []) == {}
    assert sorted(again) == ["c", "d"]
    assert len({*first.values(), *again.values()}) == 4  # four rows, four ids
    with store.engine.connect() as conn:
        rows = dict(conn.execute(select(events_table.c.event_key, events_table.c.new)).all())
    assert rows == {"a": 1, "b": {"x": [1]}, "c": 3, "d": None}  # the first "c" won


def test_actions_are_stored_once_by_key(store: Store) -> None:
    with store.tx() as conn:
        assert actions.add_actions(store, conn, [_action("a"), _action("b")]) == {"a", "b"}
    with store.tx() as conn:
        stored = actions.add_actions(store, conn, [_action("b"), _action("c"), _action("c")])
    assert stored == {"c"}
    assert [r.key for r in actions.list_actions(store)] == ["a", "b", "c"]


def test_snapshots_are_upserted_together(store: Store) -> None:
    with store.tx() as conn:
        events.save_snapshots(store, conn, [_snapshot("1", 1), _snapshot("2", 1)])
    with store.tx() as conn:
        events.save_snapshots(store, conn, [_snapshot("2", 2), _snapshot("3", 1)])
        events.save_snapshots(store, conn, [])
    with store.engine.connect() as conn:
        rows = conn.execute(select(snapshots.c.object_id, snapshots.c.version, snapshots.c.fields))
        found = sorted(tuple(r) for r in rows)
    assert found == [("1", 1, {"v": 1}), ("2", 2, {"v": 2}), ("3", 1, {"v": 1})]


def test_finishing_records_only_the_attempts_of_actions_still_in_flight(store: Store) -> None:
    with store.tx() as conn:
        actions.add_actions(store, conn, [_action("a"), _action("b"), _action("c")])
    claimed = actions.claim_due_actions(store, "me", now_ms=1, lease_ms=1_000, limit=10)
    assert len(claimed) == 3
    a, b, c = claimed
    with store.tx() as conn:
        actions.update_action(conn, b.id, status="cancelled")  # an operator, meanwhile
    actions.finish_actions(
        store,
        [
            actions.Finish(a.id, 1, 5, {"status": "done", "external_id": "x-1"}),
            actions.Finish(b.id, 1, 5, {"status": "done", "external_id": "x-2"}),
            actions.Finish(c.id, 1, 5, {"status": "dead", "last_error": "no"}),
        ],
    )
    statuses = {r.key: (r.status, r.external_id) for r in actions.list_actions(store)}
    assert statuses == {"a": ("done", "x-1"), "b": ("cancelled", None), "c": ("dead", None)}
    with store.engine.connect() as conn:
        history = conn.execute(
            select(
                action_attempts.c.action_id,
                action_attempts.c.attempt,
                action_attempts.c.finished_at,
                action_attempts.c.outcome,
                action_attempts.c.error,
            ).order_by(action_attempts.c.action_id)
        ).all()
    assert [tuple(h) for h in history] == [(a.id, 1, 5, "done", None), (c.id, 1, 5, "dead", "no")]
