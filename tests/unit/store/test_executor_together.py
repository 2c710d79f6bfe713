"""Actions performed together (`ActionSpec.together`, issue 17): first attempts that need no
look-up go to the connector in one call, with as many requests in flight at once as the
connector's places allow; each comes to its own outcome, as alone."""

from __future__ import annotations

from typing import Any

from syncd.clock import FakeClock, to_ms
from syncd.connector import Connector, ConnectorSettings, ParamsModel, action
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.executor import Executor
from syncd.model import ActionContext, ActionResult
from syncd.store import actions
from syncd.store.db import Store
from tests.helpers import plan_action


class RecordParams(ParamsModel):
    title: str


# What a title makes the target answer (anything else: made).
FAILURES: dict[str, Exception] = {
    "refused": PermanentError("HTTP 422: Validation Failed"),
    "busy": TransientError("HTTP 503", retry_after=30),
    "made-no-answer": UncertainError("HTTP 502 (the request may have been applied)"),
    "bug": KeyError("number"),
}


class Ledger(Connector):
    """Effects by idempotency key; `calls` records how the executor called it."""

    name = "ledger"

    def __init__(self, settings: ConnectorSettings, clock: Any = None) -> None:
        super().__init__(settings, clock)
        self.effects: list[tuple[str, str]] = []
        self.calls: list[tuple[str, list[str]]] = []
        self.windows: list[int] = []
        self.whole_call_fails = False

    def _make(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        failure = FAILURES.get(params.title)
        if params.title == "made-no-answer":
            self.effects.append((ctx.key, params.title))
        if failure is not None:
            raise failure
        self.effects.append((ctx.key, params.title))
        return ActionResult(external_id=f"e{len(self.effects)}")

    @action("record", RecordParams)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        self.calls.append(("alone", [ctx.key]))
        return self._make(params, ctx)

    @record.together(window=3)
    def record_together(
        self, params: list[RecordParams], ctxs: list[ActionContext], window: int
    ) -> list[ActionResult | Exception]:
        self.calls.append(("together", [c.key for c in ctxs]))
        self.windows.append(window)
        if self.whole_call_fails:
            raise OSError("connection pool broken")
        out: list[ActionResult | Exception] = []
        for one, ctx in zip(params, ctxs, strict=True):
            try:
                out.append(self._make(one, ctx))
            except Exception as exc:
                out.append(exc)
        return out

    @record.finder
    def find_record(self, params: RecordParams, ctx: ActionContext) -> ActionResult | None:
        self.calls.append(("look-up", [ctx.key]))
        for n, (key, _) in enumerate(self.effects, 1):
            if key == ctx.key:
                return ActionResult(external_id=f"e{n}")
        return None


def plan(store: Store, key: str, title: str, now_ms: int) -> None:
    plan_action(store, key, {"title": title}, now_ms)


def setup() -> tuple[Store, FakeClock, Ledger, Executor]:
    store, clock = Store.in_memory(), FakeClock()
    ledger = Ledger(ConnectorSettings(), clock)
    # live actions (no look-up window after the start: these changes have no time of their own)
    executor = Executor(store, {"ledger": ledger}, clock, lease_seconds=60, lookup_window_seconds=0)
    return store, clock, ledger, executor


def by_key(store: Store) -> dict[str, actions.ActionRow]:
    return {row.key: row for row in actions.list_actions(store)}


def test_first_attempts_go_together_with_the_connectors_window() -> None:
    store, clock, ledger, executor = setup()
    for n in range(5):
        plan(store, f"k{n}", f"t{n}", to_ms(clock.now()))
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 5
    assert ledger.calls == [("together", [f"k{n}" for n in range(5)])]
    assert ledger.windows == [3]
    rows = by_key(store)
    assert [(rows[f"k{n}"].status, rows[f"k{n}"].attempts) for n in range(5)] == [("done", 1)] * 5
    assert sorted(rows[f"k{n}"].external_id or "" for n in range(5)) == [
        f"e{n}" for n in range(1, 6)
    ]
    assert executor._in_flight["ledger"] == 0  # every place given back


def test_a_group_counts_once_against_max_in_flight_as_a_batch_does() -> None:
    # max_in_flight bounds the workers on a connector (a hanging API holds at most that
    # many); the worker on it keeps the connector's window of requests in flight.
    store, clock = Store.in_memory(), FakeClock()
    ledger = Ledger(ConnectorSettings(max_in_flight=1), clock)
    executor = Executor(store, {"ledger": ledger}, clock, lookup_window_seconds=0)
    plan(store, "held", "t-held", to_ms(clock.now()))
    (held,) = executor.claim(1)  # another worker is on the connector
    for n in range(4):
        plan(store, f"k{n}", f"t{n}", to_ms(clock.now()))
    assert executor.run_due(limit=10) == []  # no second worker on it
    executor.unclaim([held])
    assert [o.key for o in executor.run_due(limit=10)] == ["k0", "k1", "k2", "k3"]
    assert ledger.calls == [("together", ["k0", "k1", "k2", "k3"])]
    assert ledger.windows == [3]
    assert executor._in_flight["ledger"] == 0


def test_each_action_of_a_group_comes_to_its_own_outcome() -> None:
    store, clock, ledger, executor = setup()
    now = to_ms(clock.now())
    for key, title in [("ok", "fine"), ("p", "refused"), ("t", "busy")]:
        plan(store, key, title, now)
    for key, title in [("u", "made-no-answer"), ("b", "bug"), ("ok2", "fine too")]:
        plan(store, key, title, now)
    outcomes = {o.key: o.status for o in executor.run_due(limit=10)}
    assert [kind for kind, _ in ledger.calls] == ["together"]
    assert outcomes == {
        "ok": "done", "p": "dead", "t": "pending", "u": "pending", "b": "pending", "ok2": "done"
    }  # fmt: skip
    rows = by_key(store)
    assert "422" in (rows["p"].last_error or "")
    assert rows["t"].next_attempt_at >= now + 30_000  # Retry-After kept
    assert "KeyError" in (rows["b"].last_error or "")
    # the retries go alone, and the uncertain one looks before it acts: made once, not twice
    clock.advance(3600)
    FAILURES.pop("busy")
    try:
        again = {o.key: o.status for o in executor.run_due(limit=10)}
    finally:
        FAILURES["busy"] = TransientError("HTTP 503", retry_after=30)
    assert again == {"t": "done", "u": "done", "b": "pending"}
    assert ("look-up", ["u"]) in ledger.calls
    assert [key for key, _ in ledger.effects].count("u") == 1
    assert all(kind != "together" for kind, _ in ledger.calls[1:])


def test_a_group_whose_call_fails_as_a_whole_retries_each_action() -> None:
    store, clock, ledger, executor = setup()
    for n in range(3):
        plan(store, f"k{n}", f"t{n}", to_ms(clock.now()))
    ledger.whole_call_fails = True
    assert [o.status for o in executor.run_due(limit=10)] == ["pending"] * 3
    rows = by_key(store)
    assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 1)}
    assert all("connection pool broken" in (r.last_error or "") for r in rows.values())
    ledger.whole_call_fails = False
    clock.advance(3600)
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 3
    assert sorted(key for key, _ in ledger.effects) == ["k0", "k1", "k2"]


def test_actions_that_must_look_first_go_alone_with_their_look_up() -> None:
    # planned before this process started: the store may have lost its record of them
    store, clock = Store.in_memory(), FakeClock()
    before = to_ms(clock.now())
    for n in range(3):
        plan(store, f"old{n}", f"t{n}", before)
    clock.advance(10)
    ledger = Ledger(ConnectorSettings(), clock)
    executor = Executor(store, {"ledger": ledger}, clock, lease_seconds=60)
    ledger.effects.append(("old1", "t1"))  # made by the process before
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 3
    assert ("together", ["old0", "old1", "old2"]) not in ledger.calls
    assert [kind for kind, _ in ledger.calls].count("look-up") == 3
    assert sorted(key for key, _ in ledger.effects) == ["old0", "old1", "old2"]


class Mailer(Connector):
    """Declares `together` but has no finder and is not idempotent: a repeat would double,
    so its actions must still go one by one, each recorded before the next is sent."""

    name = "ledger"

    def __init__(self, settings: ConnectorSettings, store: Store) -> None:
        super().__init__(settings, None)
        self.store = store
        self.calls: list[str] = []

    @action("record", RecordParams)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        self.calls.append("alone")
        return ActionResult(external_id=params.title)

    @record.together(window=3)
    def record_together(
        self, params: list[RecordParams], ctxs: list[ActionContext], window: int
    ) -> list[ActionResult | Exception]:
        self.calls.append("together")
        return [ActionResult(external_id=p.title) for p in params]


def test_actions_a_repeat_would_double_never_go_together() -> None:
    store, clock = Store.in_memory(), FakeClock()
    mailer = Mailer(ConnectorSettings(), store)
    executor = Executor(store, {"ledger": mailer}, clock, lease_seconds=60, lookup_window_seconds=0)
    for n in range(3):
        plan(store, f"k{n}", f"t{n}", to_ms(clock.now()))
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 3
    assert mailer.calls == ["alone"] * 3


def test_a_group_interrupted_before_its_results_are_recorded_is_looked_up_not_repeated() -> None:
    store, clock, ledger, executor = setup()
    for n in range(3):
        plan(store, f"k{n}", f"t{n}", to_ms(clock.now()))
    rows = executor.claim(10)  # in flight; the group is sent, then the process dies
    ledger.record_together(
        [RecordParams(title=r.params["title"]) for r in rows],
        [ActionContext(key=r.key, rule_id="r1", attempt=1) for r in rows],
        3,
    )
    clock.advance(61)  # the lease ran out
    assert [o.status for o in executor.run_due(limit=10)] == ["done"] * 3
    assert sorted(key for key, _ in ledger.effects) == ["k0", "k1", "k2"]
    assert [kind for kind, _ in ledger.calls[1:]] == ["look-up"] * 3
    assert {(r.attempts, r.status) for r in actions.list_actions(store)} == {(2, "done")}
