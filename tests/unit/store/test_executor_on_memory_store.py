"""The executor on a SQLite memory store: no file, no fake server; a ledger connector keeps
its effects in a list, and finds them by idempotency key as a real target would."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from syncd import executor as executor_module
from syncd.clock import FakeClock, to_ms
from syncd.connector import Connector, ConnectorSettings, ParamsModel, action
from syncd.errors import TransientError
from syncd.executor import Executor
from syncd.logs import configure_logging
from syncd.model import ActionContext, ActionResult
from syncd.store import actions
from syncd.store.db import Store
from tests.helpers import plan_action


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
    plan_action(store, key, {"title": key.upper()}, now_ms)


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


def _count_transactions(store: Store) -> list[int]:
    count = [0]
    original = store.tx

    def counted() -> Any:
        count[0] += 1
        return original()

    store.tx = counted  # type: ignore[method-assign]
    return count


def test_a_batch_of_looked_up_actions_is_recorded_in_one_transaction() -> None:
    store, clock, _ledger, executor = setup()
    for n in range(10):
        plan(store, f"k{n}", to_ms(clock.now()))
    transactions = _count_transactions(store)
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 10
    assert transactions[0] == 2  # the claim, then the ten results together
    rows = actions.list_actions(store)
    assert [(r.status, r.external_id) for r in rows] == [("done", f"e{n}") for n in range(1, 11)]
    assert executor.run_due() == []


class Mailer(Connector):
    """An action no finder can look up and not idempotent: a repeat would send twice."""

    name = "ledger"

    def __init__(self, settings: ConnectorSettings, store: Store) -> None:
        super().__init__(settings, None)
        self.store = store
        self.seen_done_before: list[list[str]] = []

    @action("record", RecordParams)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        done = [r.key for r in actions.list_actions(self.store) if r.status == "done"]
        self.seen_done_before.append(done)
        return ActionResult(external_id=params.title)


def test_an_action_a_repeat_would_double_is_recorded_before_the_next_one_runs() -> None:
    store, clock = Store.in_memory(), FakeClock()
    mailer = Mailer(ConnectorSettings(), store)
    executor = Executor(store, {"ledger": mailer}, clock, lease_seconds=60)
    for key in ("a", "b", "c"):
        plan(store, key, to_ms(clock.now()))
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 3
    # a crash after "a" was sent must not send it again: it is recorded before "b" is sent
    assert mailer.seen_done_before == [[], ["a"], ["a", "b"]]


class Slow(Connector):
    """An API that hangs until released: its actions hold the workers that perform them."""

    name = "slow"

    def __init__(self, settings: ConnectorSettings) -> None:
        super().__init__(settings, None)
        self.started = threading.Event()
        self.release = threading.Event()

    @action("record", RecordParams, idempotent=True)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        self.started.set()
        self.release.wait(10)
        return ActionResult(external_id=params.title)


def plan_for(store: Store, connector: str, key: str, now_ms: int) -> None:
    plan(store, key, now_ms)
    with store.tx() as conn:
        row = actions.actions_by_key_prefix(conn, key)[0]
        actions.update_action(conn, row.id, connector=connector)


@pytest.mark.parametrize("bound_by", ["executor", "connector"])
def test_a_hanging_api_holds_at_most_its_share_of_the_workers(bound_by: str) -> None:
    store, clock = Store.in_memory(), FakeClock()
    own = ConnectorSettings(max_in_flight=1) if bound_by == "connector" else ConnectorSettings()
    slow, ledger = Slow(own), Ledger(ConnectorSettings(), clock)
    default = 1 if bound_by == "executor" else None
    executor = Executor(store, {"slow": slow, "ledger": ledger}, clock, max_in_flight=default)
    now = to_ms(clock.now())
    plan_for(store, "slow", "s1", now)
    plan_for(store, "slow", "s2", now)
    plan_for(store, "ledger", "f1", now)
    first: list[Any] = []
    worker = threading.Thread(target=lambda: first.extend(executor.run_due(limit=1)))
    worker.start()
    try:
        assert slow.started.wait(10)
        # the slow API has its one action in flight: the next worker takes the other API's
        assert [(o.key, o.status) for o in executor.run_due(limit=1)] == [("f1", "done")]
        assert executor.run_due(limit=1) == []  # s2 waits for the slow API's slot
    finally:
        slow.release.set()
        worker.join(10)
    assert [(o.key, o.status) for o in first] == [("s1", "done")]
    assert [(o.key, o.status) for o in executor.run_due(limit=1)] == [("s2", "done")]


def test_the_bound_counts_workers_so_one_worker_still_takes_a_whole_batch() -> None:
    store, clock = Store.in_memory(), FakeClock()
    ledger = Ledger(ConnectorSettings(), clock)
    executor = Executor(store, {"ledger": ledger}, clock, max_in_flight=1)
    for key in ("a", "b", "c"):
        plan(store, key, to_ms(clock.now()))
    assert [o.key for o in executor.run_due(limit=10)] == ["a", "b", "c"]
    assert executor.run_due(limit=10) == []  # and its place was given back
    plan(store, "d", to_ms(clock.now()))
    assert [o.key for o in executor.run_due(limit=10)] == ["d"]


def test_a_full_claim_asks_for_another_thread_and_a_partial_one_does_not() -> None:
    # The daemon wakes one executor thread per wake; one that claims as many actions as it
    # asked for says there may be more, so that another thread is woken for them.
    store, clock, _, executor = setup()
    asked: list[int] = []
    executor.on_full_claim = lambda: asked.append(1)
    for n in range(5):
        plan(store, f"k{n}", to_ms(clock.now()))
    assert len(executor.run_due(2)) == 2 and len(asked) == 1
    assert len(executor.run_due(2)) == 2 and len(asked) == 2
    assert len(executor.run_due(2)) == 1 and len(asked) == 2


def test_run_while_due_records_each_batch_in_the_transaction_that_claims_the_next() -> None:
    store, clock, ledger, executor = setup()
    for n in range(20):
        plan(store, f"k{n:02}", to_ms(clock.now()))
    transactions = _count_transactions(store)
    assert executor.run_while_due(10, lambda: False) == 20
    # claim 1; results 1 + claim 2; results 2 + the claim that finds nothing (not 5 apart)
    assert transactions[0] == 3
    rows = actions.list_actions(store)
    assert {(r.status, r.attempts, r.lease_owner) for r in rows} == {("done", 1, None)}
    assert sorted(k for k, _ in ledger.effects) == [f"k{n:02}" for n in range(20)]


def test_run_while_due_records_the_last_batch_when_the_next_claim_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, clock, _ledger, executor = setup()
    for n in range(3):
        plan(store, f"k{n}", to_ms(clock.now()))
    claims: list[int] = []
    real_claim = executor_module.claim_due_actions

    def claim_then_fail(*args: Any, **kwargs: Any) -> Any:
        claims.append(1)
        if len(claims) > 1:
            raise OSError("disk I/O error")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(executor_module, "claim_due_actions", claim_then_fail)
    with pytest.raises(OSError):
        executor.run_while_due(10, lambda: False)
    # the failed claim's transaction rolled the results back with it: recorded on their own
    rows = actions.list_actions(store)
    assert [(r.status, r.external_id) for r in rows] == [("done", f"e{n}") for n in (1, 2, 3)]


class AnnouncedLock:
    """The store's write lock, announcing each thread that is about to wait for it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.waiting = threading.Event()

    def __enter__(self) -> None:
        self.waiting.set()
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_a_worker_gives_its_place_back_without_waiting_for_a_claim_blocked_on_the_store() -> None:
    store, clock, _ledger, executor = setup()
    plan(store, "k1", to_ms(clock.now()))
    (row,) = executor.claim(10)
    with store.tx():  # the inbox's transaction: a claim now waits for the write lock
        announced = AnnouncedLock(store._write_lock)
        store._write_lock = announced  # type: ignore[assignment]
        claimer = threading.Thread(target=lambda: executor.claim(10))
        claimer.start()
        assert announced.waiting.wait(10)
        giver = threading.Thread(target=lambda: executor.unclaim([row]))
        giver.start()
        giver.join(10)  # a deadlock guard, not a speed limit: it returns at once
        returned = not giver.is_alive()
    claimer.join(10)
    giver.join(10)
    assert returned


class _CountedBinds:
    """The executor's logger, counting the loggers bound for actions."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.binds = 0

    def bind(self, **context: Any) -> Any:
        self.binds += 1
        return self.real.bind(**context)


def test_at_level_warning_a_successful_action_binds_no_logger_and_at_info_logs_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, clock, _ledger, executor = setup()
    counted = _CountedBinds(executor_module.log)
    monkeypatch.setattr(executor_module, "log", counted)
    lines = io.StringIO()
    try:
        configure_logging("WARNING", json=True, stream=lines)
        plan(store, "quiet", to_ms(clock.now()))
        assert [o.status for o in executor.run_due()] == ["done"]
        assert counted.binds == 0 and lines.getvalue() == ""
        configure_logging("INFO", json=True, stream=lines)
        plan(store, "heard", to_ms(clock.now()))
        assert [o.status for o in executor.run_due()] == ["done"]
    finally:
        configure_logging("WARNING")
    done = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(d["event"], d["key"], d["action"], d["attempt"]) for d in done] == [
        ("action.done", "heard", "ledger.record", 1)
    ]


def test_a_claim_that_took_all_that_was_due_asks_for_no_other_thread() -> None:
    # Woken for a full claim that had taken the last actions, a thread found nothing, in a
    # write transaction of its own: the claim reads one row more to know.
    store, clock, _, executor = setup()
    asked: list[int] = []
    executor.on_full_claim = lambda: asked.append(1)
    for n in range(4):
        plan(store, f"k{n}", to_ms(clock.now()))
    assert len(executor.run_due(2)) == 2 and len(asked) == 1  # two more are due
    assert len(executor.run_due(2)) == 2 and len(asked) == 1  # these were the last
    for n in range(3):
        plan(store, f"m{n}", to_ms(clock.now()))
    assert executor.run_while_due(3, lambda: False) == 3
    assert len(asked) == 1
    assert {r.status for r in actions.list_actions(store)} == {"done"}
