"""The statements a webhook costs outside the ingest (issue 17): deliveries stored and
attempts finished in one statement per batch, reading nothing back first."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from syncd.store import actions, inbox
from syncd.store.db import Store, open_store


def _statements(store: Store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if not sql.startswith("BEGIN"):
            seen.append(sql.split(None, 1)[0].upper())

    return seen


def _delivery(delivery_id: str) -> dict[str, Any]:
    return {
        "connector": "ledger",
        "delivery_id": delivery_id,
        "headers": {},
        "body": b"{}",
        "received_at": 1,
    }


def test_a_batch_of_deliveries_is_stored_in_one_statement() -> None:
    store = Store.in_memory()
    with store.tx() as conn:
        assert inbox.add_deliveries(store, conn, [_delivery("a")]) == [True]
    statements = _statements(store)
    with store.tx() as conn:
        fresh = inbox.add_deliveries(
            store, conn, [_delivery("b"), _delivery("a"), _delivery("c"), _delivery("b")]
        )
    assert fresh == [True, False, True, False]  # "a" stored before; "b" sent twice
    assert statements == ["INSERT"]
    assert [r.delivery_id for r in inbox.claim_due_deliveries(store, 5, 10, 10)] == ["a", "b", "c"]


def test_a_batch_of_finishes_takes_two_statements() -> None:
    store = Store.in_memory()
    with store.tx() as conn:
        actions.add_actions(
            store,
            conn,
            [
                {
                    "key": f"k{n}",
                    "rule_id": "r",
                    "connector": "ledger",
                    "action": "record",
                    "params": {},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": 0,
                    "created_at": 0,
                    "updated_at": 0,
                }
                for n in range(10)
            ],
        )
    claimed = actions.claim_due_actions(store, "me", now_ms=1, lease_ms=1_000, limit=10)
    statements = _statements(store)
    actions.finish_actions(
        store,
        [actions.Finish(r.id, 1, 5, {"status": "done", "external_id": str(r.id)}) for r in claimed],
    )
    assert statements == ["INSERT", "UPDATE"]  # the attempts' records, then the actions
    assert {r.status for r in actions.list_actions(store)} == {"done"}


def test_a_begin_that_fails_raises_sqlalchemys_error(tmp_path: Path) -> None:
    """BEGIN goes straight to sqlite3; its failure still surfaces as SQLAlchemy's error."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:  # the pool's one connection, made impatient
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(OperationalError, match="locked"), store.tx():
            pass
    finally:
        other.close()
        store.dispose()


def test_batches_of_any_size_share_a_few_statement_texts() -> None:
    """The driver keeps every statement text it ran prepared (sqlite3: 128 a connection):
    one text per batch size filled it with multi-row inserts (14 MB for sizes 1 to 129)."""
    store = Store.in_memory()
    texts: set[str] = set()

    @event.listens_for(store.engine, "before_cursor_execute")
    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        texts.add(sql)

    sent = 0
    for size in range(1, 101):
        rows = [_delivery(f"d{sent + n}") for n in range(size)]
        sent += size
        with store.tx() as conn:
            assert inbox.add_deliveries(store, conn, rows) == [True] * size
        inbox.claim_due_deliveries(store, now_ms=5, lease_ms=10, limit=size)
    inserts = {t for t in texts if t.startswith("INSERT")}
    updates = {t for t in texts if t.startswith("UPDATE")}
    assert len(inserts) <= 7 and len(updates) <= 8, (len(inserts), len(updates))


def test_the_new_deliveries_row_ids_come_with_the_insert() -> None:
    store = Store.in_memory()
    with store.tx() as conn:
        first = inbox.add_delivery_rows(store, conn, [_delivery("a"), _delivery("b")])
        again = inbox.add_delivery_rows(
            store, conn, [_delivery("c"), _delivery("a"), _delivery("c")]
        )
    claimed = {r.delivery_id: r.id for r in inbox.claim_due_deliveries(store, 5, 10, 10)}
    assert first == [claimed["a"], claimed["b"]]
    assert again == [claimed["c"], None, None]  # "a" stored before; "c" sent twice


class _IdleInbox:
    """An inbox thread that is idle and takes what the writer hands it (syncd.inbox's
    StoredHandoff, as InboxProcessor answers when idle)."""

    def __init__(self) -> None:
        self.handed: list[Any] = []

    def ready(self) -> bool:
        return True

    def prefetch(self, delivery: Any) -> bool:
        return False

    def offer(self, rows: list[Any]) -> bool:
        self.handed.extend(rows)
        return True

    def settle(self) -> bool:
        return False


def test_a_delivery_handed_to_the_idle_inbox_costs_the_intake_one_statement() -> None:
    """The rows handed over carry the ids the insert returned: none is read back."""
    from syncd.inbox import Delivery, InboxWriter

    store = Store.in_memory()
    writer = InboxWriter(store)
    idle = _IdleInbox()
    writer.handoff = idle
    statements = _statements(store)
    try:
        assert writer.submit(Delivery("ledger", "d-1", {}, b"{}", 1)).result(5) is True
    finally:
        writer.close()
    assert statements == ["INSERT"]
    claimed = inbox.claim_due_deliveries(store, 5, 10, 10)
    assert [(r.id, r.delivery_id) for r in idle.handed] == [(claimed[0].id, "d-1")]
