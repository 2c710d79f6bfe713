"""The store API on a SQLite memory store: what each query means, on typed rows."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from syncd.store import actions, cursors, events, inbox, leadership, state
from syncd.store.db import Store


@pytest.fixture
def store() -> Store:
    return Store.in_memory()


def plan(store: Store, key: str, now_ms: int = 1_000, **extra: Any) -> bool:
    values: dict[str, Any] = {
        "key": key,
        "rule_id": "r1",
        "connector": "ledger",
        "action": "record",
        "params": {"title": key},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now_ms,
        "created_at": now_ms,
        "updated_at": now_ms,
        **extra,
    }
    with store.tx() as conn:
        return actions.add_action(store, conn, values)


def test_in_memory_store_is_one_database_across_threads(store: Store) -> None:
    """The inbox writer plans from its own thread: it must see the same database."""
    writer = threading.Thread(target=plan, args=(store, "a"))
    writer.start()
    writer.join()
    assert [r.key for r in actions.list_actions(store)] == ["a"]


def test_planning_is_idempotent_by_key(store: Store) -> None:
    assert plan(store, "a") is True
    assert plan(store, "a") is False
    assert len(actions.list_actions(store)) == 1


def test_claim_takes_due_actions_once_under_a_lease(store: Store) -> None:
    plan(store, "due", now_ms=1_000)
    plan(store, "later", now_ms=9_000)
    claimed = actions.claim_due_actions(store, "me", now_ms=2_000, lease_ms=500, limit=10)
    assert [(r.key, r.attempts, r.status) for r in claimed] == [("due", 0, "pending")]
    # Leased: nobody else takes it until the lease runs out.
    assert actions.claim_due_actions(store, "other", 2_100, 500, 10) == []
    (again,) = actions.claim_due_actions(store, "other", 2_600, 500, 10)
    assert (again.key, again.attempts, again.status, again.lease_owner) == (
        "due",
        1,
        "in_flight",
        "me",
    )


def test_claim_can_defer_an_action_without_counting_an_attempt(store: Store) -> None:
    plan(store, "wait")
    plan(store, "go")
    claimed = actions.claim_due_actions(
        store, "me", 1_000, 500, 10, defer=lambda r: 5_000 if r.key == "wait" else None
    )
    assert [r.key for r in claimed] == ["go"]
    actions.finish_action(store, claimed[0].id, 1_100, status="done")
    (waiting,) = actions.list_actions(store, status="pending")
    assert (waiting.key, waiting.attempts, waiting.next_attempt_at) == ("wait", 0, 5_000)
    assert actions.claim_due_actions(store, "me", 4_999, 500, 10) == []
    assert [r.key for r in actions.claim_due_actions(store, "me", 5_000, 500, 10)] == ["wait"]


def test_extend_leases_only_for_the_holder(store: Store) -> None:
    plan(store, "a")
    plan(store, "b")
    a, b = actions.claim_due_actions(store, "me", 1_000, 500, 10)
    actions.extend_leases(store, [a.id], "someone-else", 9_000)  # not its holder: no effect
    actions.extend_leases(store, [b.id], "me", 9_000)
    assert [r.key for r in actions.claim_due_actions(store, "other", 8_999, 500, 10)] == ["a"]


def test_finish_changes_only_an_action_in_flight(store: Store) -> None:
    plan(store, "a")
    (row,) = actions.claim_due_actions(store, "me", 1_000, 500, 10)
    with store.tx() as conn:
        actions.update_action(conn, row.id, status="cancelled")
    actions.finish_action(store, row.id, 1_100, status="done", external_id="x")
    (after,) = actions.list_actions(store)
    assert (after.status, after.external_id) == ("cancelled", None)


def test_finish_records_the_result_and_drops_the_lease(store: Store) -> None:
    plan(store, "a")
    (row,) = actions.claim_due_actions(store, "me", 1_000, 500, 10)
    actions.finish_action(store, row.id, 1_100, status="done", external_id="x-1")
    (after,) = actions.list_actions(store)
    assert (
        after.status,
        after.external_id,
        after.lease_owner,
        after.lease_until,
        after.updated_at,
    ) == ("done", "x-1", None, None, 1_100)


def test_counts_and_pruning(store: Store) -> None:
    plan(store, "a")
    plan(store, "b")
    (row, _) = actions.claim_due_actions(store, "me", 1_000, 500, 10)
    actions.finish_action(store, row.id, 1_100, status="done")
    by_status, due = actions.count_by_status(store, 1_000)
    assert by_status == {"done": 1, "in_flight": 1} and due == 1
    with store.tx() as conn:
        assert actions.prune_finished_actions(conn, cutoff_ms=2_000) == 1
    assert [r.key for r in actions.list_actions(store)] == ["b"]


def test_inbox_claim_counts_the_attempt_and_leases_by_time(store: Store) -> None:
    with store.tx() as conn:
        inbox.add_deliveries(
            store,
            conn,
            [
                {
                    "connector": "ledger",
                    "delivery_id": "d1",
                    "headers": {"h": "1"},
                    "body": b"{}",
                    "received_at": 5,
                }
            ],
        )
        assert inbox.known_delivery_ids(conn, "ledger", ["d1", "d2"]) == {"d1"}
    (row,) = inbox.claim_due_deliveries(store, now_ms=10, lease_ms=100, limit=5)
    assert (row.delivery_id, row.body, row.headers, row.attempts) == ("d1", b"{}", {"h": "1"}, 0)
    assert inbox.claim_due_deliveries(store, 50, 100, 5) == []
    inbox.fail_delivery(store, row.id, "unparseable")
    assert [(d.id, d.last_error) for d in inbox.list_deliveries(store, "failed", 10)] == [
        (row.id, "unparseable")
    ]
    assert inbox.requeue_failed_delivery(store, row.id) is True
    assert inbox.requeue_failed_delivery(store, row.id) is False
    (again,) = inbox.claim_due_deliveries(store, 50, 100, 5)
    assert again.attempts == 0


def test_a_stored_delivery_reads_back_as_it_came(store: Store) -> None:
    """Headers and body byte for byte, whatever a sender put in them (the intake's insert
    is SQL text on SQLite, with its own encoding of the headers)."""
    odd = {
        "connector": "ledger",
        "delivery_id": "d'1\"",
        "headers": {"x-sig": "sha256=\u00e9\u00ff'\"\\", "x-empty": ""},
        "body": b"\x00\xff\xfe not UTF-8 \x00",
        "received_at": 2**62,
    }
    batch = [odd, *({**odd, "delivery_id": f"n{i}"} for i in range(40))]  # chunks of 32+8
    with store.tx() as conn:
        assert inbox.add_deliveries(store, conn, batch) == [True] * 41
    rows = inbox.claim_due_deliveries(store, now_ms=10, lease_ms=100, limit=50)
    assert len(rows) == 41
    first = rows[0]
    assert (first.delivery_id, first.headers, first.body, first.received_at) == (
        odd["delivery_id"],
        odd["headers"],
        odd["body"],
        odd["received_at"],
    )
    assert (first.status, first.attempts, first.next_attempt_at) == ("pending", 0, 0)
    assert [r.delivery_id for r in rows[1:]] == [f"n{i}" for i in range(40)]


def test_snapshots_events_and_cursors(store: Store) -> None:
    with store.tx() as conn:
        events.save_snapshot(
            store,
            conn,
            {
                "source": "s",
                "object_type": "t",
                "object_id": "1",
                "version": 7,
                "fields": {"a": 1},
                "context": {},
                "entered": {},
                "deleted": False,
                "updated_at": 1,
            },
        )
        first = events.add_event(
            store,
            conn,
            {
                "event_key": "k",
                "source": "s",
                "object_type": "t",
                "object_id": "1",
                "kind": "created",
                "version": 7,
                "created_at": 1,
            },
        )
        assert (
            events.add_event(
                store,
                conn,
                {
                    "event_key": "k",
                    "source": "s",
                    "object_type": "t",
                    "object_id": "1",
                    "kind": "created",
                    "version": 7,
                    "created_at": 1,
                },
            )
            is None
        )
        snap = events.snapshot_for_update(store, conn, "s", "t", "1")
        cursors.save_cursor(store, conn, "s", "t", "c-9", 3)
    assert first is not None and events.event_version(store, first) == 7
    assert snap is not None and (snap.version, snap.fields) == (7, {"a": 1})
    assert [s.object_id for s in events.live_snapshots(store, "s", "t")] == ["1"]
    assert cursors.read_cursor(store, "s", "t") == "c-9"
    assert [(c.stream, c.value) for c in cursors.all_cursors(store)] == [("t", "c-9")]


def test_state_values(store: Store) -> None:
    state.set_value(store, "x", "k", {"n": 1}, 1)
    with store.tx() as conn:
        state.add_value_if_absent(store, conn, "x", "k", {"n": 2}, 2)  # first writer wins
        state.add_value_if_absent(store, conn, "x", "k2", 5, 2)
    assert state.get_value(store, "x", "k") == {"n": 1}
    assert state.values_with_prefix(store, "x", "k") == {"k": {"n": 1}, "k2": 5}
    with store.tx() as conn:
        state.delete_value(conn, "x", "k")
    assert state.get_value(store, "x", "k") is None


def test_a_new_holder_gets_a_higher_fence(store: Store) -> None:
    first = leadership.take_job(store, "poll:s:t", "r1", 1)
    second = leadership.take_job(store, "poll:s:t", "r2", 2)
    assert second == first + 1
    with store.tx() as conn:
        assert leadership.current_fence(conn, "poll:s:t") == second
    assert [(j.name, j.holder) for j in leadership.all_jobs(store)] == [("poll:s:t", "r2")]
