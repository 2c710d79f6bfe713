"""The executor on a SQLite memory store: no file, no fake server; a ledger connector keeps
its effects in a list, and finds them by idempotency key as a real target would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from syncd.clock import FakeClock, to_ms
from syncd.connector import Connector, ConnectorSettings, ParamsModel, action
from syncd.errors import TransientError
from syncd.executor import Executor
from syncd.model import ActionContext, ActionResult
from syncd.store import actions
from syncd.store.db import Store


class RecordParams(ParamsModel):
    title: str


class Ledger(Connector):
    """Effects by idempotency key; `fail_next` transient errors before the next success."""

    name = "ledger"

    def __init__(self, settings: ConnectorSettings, clock: Any = None) -> None:
        super().__init__(settings, clock)
        self.effects: list[tuple[str, str]] = []
        self.fail_next = 0

    @action("record", RecordParams)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("ledger busy", retry_after=30)
        self.effects.append((ctx.key, params.title))
        return ActionResult(external_id=f"e{len(self.effects)}")

    @record.finder
    def find_record(self, params: RecordParams, ctx: ActionContext) -> ActionResult | None:
        for n, (key, _) in enumerate(self.effects, 1):
            if key == ctx.key:
                return ActionResult(external_id=f"e{n}")
        return None


def plan(store: Store, key: str, now_ms: int) -> None:
    with store.tx() as conn:
        actions.add_action(
            store,
            conn,
            {
                "key": key,
                "rule_id": "r1",
                "connector": "ledger",
                "action": "record",
                "params": {"title": key.upper()},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now_ms,
                "created_at": now_ms,
                "updated_at": now_ms,
            },
        )


def setup() -> tuple[Store, FakeClock, Ledger, Executor]:
    store, clock = Store.in_memory(), FakeClock()
    ledger = Ledger(ConnectorSettings(), clock)
    return store, clock, ledger, Executor(store, {"ledger": ledger}, clock, lease_seconds=60)


def test_due_action_is_performed_once_and_its_result_recorded() -> None:
    store, clock, ledger, executor = setup()
    plan(store, "k1", to_ms(clock.now()))
    assert [(o.key, o.status) for o in executor.run_due()] == [("k1", "done")]
    assert executor.run_due() == []
    assert ledger.effects == [("k1", "K1")]
    (row,) = actions.list_actions(store)
    assert (row.status, row.external_id, row.attempts, row.lease_owner) == ("done", "e1", 1, None)


def test_action_interrupted_in_flight_is_found_not_repeated() -> None:
    store, clock, ledger, executor = setup()
    plan(store, "k1", to_ms(clock.now()))
    (row,) = executor.claim(10)  # in flight; the call succeeds, then the process dies
    ledger.effects.append((row.key, "K1"))
    assert executor.run_due() == []  # the lease still holds
    clock.advance(61)
    assert [o.status for o in executor.run_due()] == ["done"]
    assert ledger.effects == [("k1", "K1")]
    (after,) = actions.list_actions(store)
    assert (after.external_id, after.attempts) == ("e1", 2)


def test_transient_error_waits_at_least_retry_after_then_succeeds() -> None:
    store, clock, ledger, executor = setup()
    plan(store, "k1", to_ms(clock.now()))
    ledger.fail_next = 1
    assert [o.status for o in executor.run_due()] == ["pending"]
    (row,) = actions.list_actions(store)
    assert row.next_attempt_at >= to_ms(clock.now() + timedelta(seconds=30))
    assert "ledger busy" in (row.last_error or "")
    assert executor.run_due() == []  # not due yet
    clock.advance(row.next_attempt_at / 1000 - clock.now().timestamp() + 1)
    assert [o.status for o in executor.run_due()] == ["done"]
    assert ledger.effects == [("k1", "K1")]
