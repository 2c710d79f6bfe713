"""The executor: performs planned actions exactly once in effect.

1. Claim due actions under a lease, marking them `in_flight` and counting the attempt, in a
   committed transaction, before any connector call (PostgreSQL: `FOR UPDATE SKIP LOCKED`,
   so replicas never claim the same row; SQLite: the single writer lock).
2. An action that was attempted before (a crash in flight, an ambiguous 502) is first looked
   up at the target by its idempotency key; only when nothing is found is it performed.
   So is a first attempt that may repeat an effect this store does not remember (a store
   restored from a backup, or a new one): an action planned before this process started,
   or for a change made at the source before then (the store's record of it may have been
   lost), or, when the change has no time of its own (a schedule's catch-up firing), planned
   within `lookup_window` of the start. Live actions skip the look-up.
3. An action whose API's rate governor would make it wait is not claimed: its
   `next_attempt_at` moves to when the governor has room (no attempt counted). A request
   that still has to wait once performing (the budget went to another thread meanwhile)
   extends the leases of the actions this executor holds, so that no replica takes over
   an action that only waits for its turn.
4. First attempts that skip the look-up, of an action that can be performed together
   (`ActionSpec.together`: GitHub's creates), go to the connector in one call from the
   worker that claimed them, a window of requests in flight at once; each comes to its own
   outcome. Only actions a repeat cannot double go this way (none of them is recorded
   before all are sent). Retries and look-ups go one by one.
5. Success records the external id. Transient errors wait (backoff, `Retry-After`); permanent
   errors and exhausted retries go `dead` with the reason, for `syncd actions retry`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from syncd import crashpoints, logs
from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.governor import BEFORE_WAIT, WRITE
from syncd.metrics import ACTIONS_FINISHED
from syncd.model import ActionContext, ActionResult
from syncd.retry import RetryPolicy
from syncd.store.actions import (
    ActionRow,
    Finish,
    claim_due_actions,
    extend_leases,
    finish_action,
    finish_actions,
    record_finishes,
)
from syncd.store.db import Store
from syncd.store.events import event_version

log = structlog.get_logger("syncd.executor")
Redactor = Callable[[str], str]
# The successes of the batch `run_due` is performing, recorded together when it ends (one
# transaction per batch, not per action). Only actions a repeat cannot double go here (they
# are looked up, or idempotent): a crash before the record costs a look-up, never an effect.
_DONE_LATER: ContextVar[list[Finish] | None] = ContextVar("done_later", default=None)
TOGETHER = "together"  # the batch key of actions performed together


@dataclass
class Outcome:
    key: str
    status: str  # done | pending (will retry) | dead
    error: str | None = None


class ActionLog:
    """An action's log context, bound (`log.bind`) when a line is written, not before: at
    log level warning a successful action writes none, and the bind and the dropped info
    line cost about 12 us per action, on threads that contend for the GIL (issue 17)."""

    __slots__ = ("_bound", "_context")

    def __init__(self, **context: Any) -> None:
        self._context = context
        self._bound: Any = None

    def bind(self, **more: Any) -> ActionLog:
        return ActionLog(**self._context, **more)

    def _logger(self) -> Any:
        if self._bound is None:
            self._bound = log.bind(**self._context)
        return self._bound

    def info(self, event: str, **values: Any) -> None:
        if logs.enabled(logging.INFO):  # what structlog's level filter asks
            self._logger().info(event, **values)

    def warning(self, event: str, **values: Any) -> None:
        self._logger().warning(event, **values)

    def error(self, event: str, **values: Any) -> None:
        self._logger().error(event, **values)

    def exception(self, event: str, **values: Any) -> None:
        self._logger().exception(event, **values)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Executor:
    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        clock: Clock,
        policy: RetryPolicy | None = None,
        *,
        lease_seconds: float = 300,
        owner: str | None = None,
        redact: Redactor = lambda s: s,
        on_dead: Callable[[ActionRow, str], None] | None = None,
        lookup_window_seconds: float = 300,
        max_in_flight: int | None = None,
    ) -> None:
        # A first attempt looks for its marker first when its change came before this
        # process started, or, for changes without a time of their own, before the window
        # after the start has passed (see above).
        self.started_ms = to_ms(clock.now())
        self.look_first_before = self.started_ms + int(lookup_window_seconds * 1000)
        self.store = store
        self.connectors = connectors
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.lease_ms = int(lease_seconds * 1000)
        self.owner = owner or default_owner()
        self.redact = redact
        self.on_dead = on_dead
        # Called when a claim found more actions due than it took: they are for another
        # thread (the daemon wakes one more executor thread).
        self.on_full_claim: Callable[[], None] | None = None
        self._next_turn_ms: int | None = None  # the soonest deferred action (idle_seconds)
        # Workers performing a connector's actions, per connector: each connector gets at
        # most its `max_in_flight` workers (default: this; None: no bound), so a slow API
        # never holds every worker. A worker's batch of one connector counts once.
        self.max_in_flight = max_in_flight
        self._in_flight: Counter[str] = Counter()
        # One claim at a time per process, so the counts it admits by stay exact; and so
        # one executor thread at a time, not a queue of them, waits with the inbox for the
        # store's write lock (SQLite): the inbox's next transaction is not held up by each.
        self._claiming = threading.Lock()
        # Held only to change `_in_flight`: a worker giving its place back never waits for
        # a claim (they did wait, behind claims waiting for the write lock: issue 17).
        self._counts = threading.Lock()

    # -- claiming ---------------------------------------------------------------------------

    def claim_in(self, conn: Any, limit: int) -> list[ActionRow]:
        """Claim inside the caller's transaction (the inbox's, which has just planned the
        actions): one transaction less on the way to the API. [] when another claim is under
        way: it may be waiting for the store's lock this transaction holds. If the caller's
        transaction does not commit, give the rows to `unclaim`."""
        if not self._claiming.acquire(blocking=False):
            return []
        try:
            return self._claim(conn, limit, self._governor_waits())
        finally:
            self._claiming.release()

    def unclaim(self, rows: list[ActionRow]) -> None:
        """Rows of a `claim_in` whose transaction rolled back: their places are free."""
        self._release({r.connector for r in rows})

    def claim(self, limit: int, finished: list[Finish] | None = None) -> list[ActionRow]:
        """Claim up to `limit` due actions in a transaction of their own. `finished`:
        attempts' ends recorded first in the same transaction (the last batch's successes,
        `run_while_due`): one write transaction per batch instead of two."""
        return self._claim_batch(limit, finished)[0]

    def _claim_batch(
        self, limit: int, finished: list[Finish] | None
    ) -> tuple[list[ActionRow], bool]:
        """`claim`, and whether more actions were due than it took."""
        waits = self._governor_waits()  # before the transaction (see _governor_waits)
        rows: list[ActionRow] = []
        more: list[bool] = []
        try:
            with self._claiming, self.store.tx() as conn:
                record_finishes(conn, finished or [])
                rows = self._claim(conn, limit, waits, lambda: more.append(True))
        except BaseException:
            self._release({r.connector for r in rows})  # counted, but not committed
            raise
        return rows, bool(more)

    def _claim(
        self,
        conn: Any,
        limit: int,
        waits: dict[int, float],
        more: Callable[[], None] | None = None,
    ) -> list[ActionRow]:
        """Claim in `conn`'s transaction, holding `_claiming`; the rows' connectors count
        as in flight from here. `more()`: more actions were due than `limit`."""
        now = to_ms(self.clock.now())

        def defer(row: ActionRow) -> int | None:
            wait = self._turn_in(row, waits)
            if wait <= 0:
                return None
            turn = now + int(wait * 1000) + 1  # only waiting for its API's turn: later,
            soonest = self._next_turn_ms  # and not in flight
            if soonest is None or soonest <= now or turn < soonest:
                self._next_turn_ms = turn
            return turn

        # Counts read without `_counts`: only this claim raises them (`_claiming`), and one
        # lowered meanwhile by a worker giving its place back only makes this claim cautious.
        busy = [c for c in self.connectors if self._in_flight[c] >= self._cap(c)]
        mine: set[str] = set()  # connectors this claim takes a worker's place on

        def admit(row: ActionRow) -> bool:
            if row.connector in mine:  # this worker is on it already: batch along
                return True
            if self._in_flight[row.connector] >= self._cap(row.connector):
                return False
            mine.add(row.connector)
            return True

        rows = claim_due_actions(
            self.store, self.owner, now, self.lease_ms, limit, defer, busy, admit, conn, more
        )
        with self._counts:
            self._in_flight.update({r.connector for r in rows})
        return rows

    def _cap(self, connector: str) -> float:
        found = self.connectors.get(connector)
        own = None if found is None else getattr(found.settings, "max_in_flight", None)
        return own or self.max_in_flight or math.inf

    def _release(self, connectors: set[str]) -> None:
        if connectors:
            with self._counts:
                self._in_flight.subtract(connectors)

    def idle_seconds(self, longest: float) -> float:
        """How long an idle executor thread may sleep: until the soonest action deferred for
        its governor's turn, at most `longest` (so a backlog drains at the governor's pace,
        not at the idle loop's)."""
        turn, now = self._next_turn_ms, to_ms(self.clock.now())
        if turn is None or turn <= now:  # none deferred, or its turn came: the usual tick
            self._next_turn_ms = None
            return longest
        return min(longest, (turn - now) / 1000)

    def _governor_waits(self) -> dict[int, float]:
        """How long a write would wait now, per rate governor (asked before the claiming
        transaction: a governor shared through the store reads it in its own)."""
        waits: dict[int, float] = {}
        for connector in self.connectors.values():
            for governor in connector.governors():
                waits[id(governor)] = governor.wait_needed(WRITE)
        return waits

    def _turn_in(self, row: ActionRow, waits: dict[int, float]) -> float:
        connector = self.connectors.get(row.connector)
        if connector is None:
            return 0.0
        governor = connector.governor_for(row.action, row.params or {})
        return 0.0 if governor is None else waits.get(id(governor), 0.0)

    def run_due(self, limit: int = 50) -> list[Outcome]:
        """Claim and perform what is due now; returns what happened to each."""
        rows, more = self._claim_batch(limit, None)
        self._wake_another(more)
        return self.perform_claimed(rows)

    def run_while_due(self, limit: int, stop: Callable[[], bool]) -> int:
        """Claim and perform batch after batch until a claim finds nothing due or `stop()`
        (the daemon's executor threads); how many actions were performed. A batch's
        successes that `perform_claimed` leaves to the end are recorded in the transaction
        that claims the next batch: until then they are in flight under their lease, as
        they are until any batch's end, and a crash meanwhile costs a look-up (they are
        only actions a repeat cannot double)."""
        performed = 0
        finished: list[Finish] = []
        try:
            while not stop():
                rows, more = self._claim_batch(limit, finished)
                finished = []  # committed with the claim
                if not rows:
                    break
                self._wake_another(more)
                performed += len(self.perform_claimed(rows, finished))
        finally:
            finish_actions(self.store, finished)  # stopped, or the claim failed: on their own
        return performed

    def _wake_another(self, more: bool) -> None:
        """Only when more were due than a claim took: a claim that took exactly what was due
        woke a thread that found nothing, in a write transaction of its own (issue 17)."""
        if more and self.on_full_claim is not None:
            self.on_full_claim()

    def perform_claimed(
        self, rows: list[ActionRow], finished: list[Finish] | None = None
    ) -> list[Outcome]:
        """Perform actions this executor has claimed (`claim`, `claim_in`). The successes
        recorded together at the end go to `finished` when given, for the caller to record
        (`run_while_due`), else in a transaction here."""
        out: list[Outcome] = []
        held = [r.id for r in rows]
        done_later: list[Finish] = []
        token = BEFORE_WAIT.set(lambda seconds: self._extend_leases(held, seconds))
        batch = _DONE_LATER.set(done_later)
        left = Counter(r.connector for r in rows)  # a connector's place is given back when
        try:  # this worker has performed its last action of it, however that ends
            for group in self._groups(rows):
                if len(group) == 1:
                    out.append(self.perform(group[0]))
                elif self._spec(group[0]).perform_batch is not None:
                    out.extend(self.perform_batch(group))
                else:
                    out.extend(self.perform_together(group))
                left.subtract(r.connector for r in group)
                done_with = {c for c, n in left.items() if n <= 0}
                self._release(done_with)
                for name in done_with:
                    del left[name]
        finally:
            self._release(set(left))
            _DONE_LATER.reset(batch)
            BEFORE_WAIT.reset(token)
            if finished is None:
                finish_actions(self.store, done_later)
            else:
                finished.extend(done_later)
        return out

    def _extend_leases(self, ids: list[int], seconds: float) -> None:
        """A request is about to wait `seconds` for its rate governor: keep the actions this
        executor still holds leased past the wait."""
        until = to_ms(self.clock.now()) + int(seconds * 1000) + self.lease_ms
        extend_leases(self.store, ids, self.owner, until)

    def _groups(self, rows: list[ActionRow]) -> list[list[ActionRow]]:
        """First attempts of batchable actions with the same batch key go together, and so
        do first attempts of an action performed together that need no look-up (in claim
        order); everything else alone."""
        groups: list[list[ActionRow]] = []
        open_batches: dict[Any, list[ActionRow]] = {}
        for row in rows:
            spec = self._spec(row)
            found = None if spec is None or row.attempts > 0 else self._group_of(row, spec)
            if found is None:
                groups.append([row])
                continue
            key, size = found
            batch = open_batches.get(key)
            if batch is None or len(batch) >= size:
                batch = open_batches[key] = []
                groups.append(batch)
            batch.append(row)
        return groups

    def _group_of(self, row: ActionRow, spec: Any) -> tuple[Any, int] | None:
        """The group a first attempt may go in, and the group's size; None: alone."""
        if spec.perform_batch is not None:
            try:
                params = spec.params.model_validate(row.params)
                return (row.connector, row.action, spec.batch_key(params)), spec.batch_size
            except (ValidationError, TypeError):
                return None  # perform() reports it
        # Only actions a repeat cannot double: sent together, none is recorded before the
        # others are sent, so a crash in between must cost a look-up, never an effect.
        harmless = spec.find_existing is not None or spec.idempotent
        if spec.perform_together is not None and spec.together_window > 1 and harmless:
            connector = self.connectors[row.connector]
            if spec.find_existing is None or not self._may_repeat(row, connector):
                return (row.connector, row.action, TOGETHER), sys.maxsize  # the whole claim's
        return None

    def _spec(self, row: ActionRow) -> Any:
        connector = self.connectors.get(row.connector)
        return None if connector is None else connector.actions.get(row.action)

    def perform_batch(self, rows: list[ActionRow]) -> list[Outcome]:
        """Several first attempts of one batchable action in one call. The batch call is
        idempotent, so an error sends each action to the usual retry or dead letter."""
        crashpoints.hit("action_in_flight")
        connector = self.connectors[rows[0].connector]
        spec = connector.actions[rows[0].action]
        params = [spec.params.model_validate(r.params) for r in rows]
        ctxs = [ActionContext(key=r.key, rule_id=r.rule_id, attempt=1, ref=r.ref) for r in rows]
        bound = ActionLog(action=f"{rows[0].connector}.{rows[0].action}", batch=len(rows))
        assert spec.perform_batch is not None  # batches are formed only for batching actions
        try:
            results = spec.perform_batch(connector, params, ctxs)
            crashpoints.hit("remote_done")
        except PermanentError as exc:
            return [self._dead(r, str(exc), bound.bind(key=r.key)) for r in rows]
        except TransientError as exc:
            return [self._retry(r, 1, exc, exc.retry_after, bound.bind(key=r.key)) for r in rows]
        except Exception as exc:
            bound.exception("action.unexpected_error")
            return [self._retry(r, 1, exc, None, bound.bind(key=r.key)) for r in rows]
        return [
            self._done(r, res, bound.bind(key=r.key, rule_id=r.rule_id))
            for r, res in zip(rows, results, strict=True)
        ]

    def perform_together(self, rows: list[ActionRow]) -> list[Outcome]:
        """First attempts of one action that need no look-up, performed from this thread by
        the connector's `perform_together`, its window of requests in flight at once (the
        worker counts once against the connector's max_in_flight, as for a batch). Each
        action's outcome is its own, as `perform` would decide it; if the call fails as a
        whole, each action fails with that error."""
        crashpoints.hit("action_in_flight")
        connector = self.connectors[rows[0].connector]
        spec = connector.actions[rows[0].action]
        assert spec.perform_together is not None  # groups are formed only for such actions
        window = spec.together_window
        outcomes: dict[int, Outcome] = {}
        ready: list[tuple[ActionRow, Any, ActionLog]] = []
        for row in rows:
            bound = self._log_for(row, 1)
            try:
                ready.append((row, spec.params.model_validate(row.params), bound))
            except ValidationError as exc:
                outcomes[row.id] = self._dead(
                    row, f"invalid parameters: {_validation_text(exc)}", bound
                )
        if ready:
            ctxs = [
                ActionContext(key=r.key, rule_id=r.rule_id, attempt=1, ref=r.ref)
                for r, _, _ in ready
            ]
            try:
                params = [p for _, p, _ in ready]
                results = spec.perform_together(connector, params, ctxs, window)
                if len(results) != len(ready):
                    raise RuntimeError(f"{len(results)} results for {len(ready)} actions")
                crashpoints.hit("remote_done")
            except Exception as exc:
                results = [exc] * len(ready)
            at_most_once = self._at_most_once(rows[0], connector)
            for (row, _, bound), result in zip(ready, results, strict=True):
                if isinstance(result, Exception):
                    outcomes[row.id] = self._failed(row, 1, result, spec, at_most_once, bound)
                else:
                    outcomes[row.id] = self._done(row, result, bound)
        return [outcomes[r.id] for r in rows]

    def drain(self, max_rounds: int = 1000, limit: int = 50) -> list[Outcome]:
        """Run until nothing is due now (for `run --once` and tests)."""
        out: list[Outcome] = []
        for _ in range(max_rounds):
            batch = self.run_due(limit)
            if not batch:
                break
            out.extend(batch)
        return out

    # -- performing -------------------------------------------------------------------------

    def perform(self, row: ActionRow) -> Outcome:
        crashpoints.hit("action_in_flight")
        attempt = row.attempts + 1
        bound = self._log_for(row, attempt)
        connector = self.connectors.get(row.connector)
        if connector is None:
            return self._dead(row, f"connector {row.connector!r} is not configured", bound)
        spec = connector.actions.get(row.action)
        if spec is None:
            return self._dead(row, f"unknown action {row.connector}.{row.action}", bound)
        try:
            params = spec.params.model_validate(row.params)
        except ValidationError as exc:
            return self._dead(row, f"invalid parameters: {_validation_text(exc)}", bound)
        ctx = ActionContext(key=row.key, rule_id=row.rule_id, attempt=attempt, ref=row.ref)
        tried_before = row.attempts > 0 or (
            spec.find_existing is not None and self._may_repeat(row, connector)
        )
        at_most_once = self._at_most_once(row, connector)
        try:
            result: ActionResult | None = None
            if tried_before and spec.find_existing is not None:
                result = spec.find_existing(connector, params, ctx)
                if result is not None:
                    bound.info("action.found_existing", external_id=result.external_id)
            elif (
                tried_before and not spec.idempotent and at_most_once and row.status == "in_flight"
            ):
                return self._dead(row, "interrupted in flight; not repeated (at-most-once)", bound)
            if result is None:
                result = spec.perform(connector, params, ctx)
            crashpoints.hit("remote_done")
        except Exception as exc:
            return self._failed(row, attempt, exc, spec, at_most_once, bound)
        return self._done(row, result, bound)

    @staticmethod
    def _log_for(row: ActionRow, attempt: int) -> ActionLog:
        return ActionLog(
            key=row.key,
            rule_id=row.rule_id,
            action=f"{row.connector}.{row.action}",
            source=row.source,
            attempt=attempt,
        )

    @staticmethod
    def _at_most_once(row: ActionRow, connector: Connector) -> bool:
        """At-most-once when the rule or the connector's settings ask for it (safer wins)."""
        return "at_most_once" in (row.guarantee, getattr(connector.settings, "guarantee", None))

    def _failed(
        self,
        row: ActionRow,
        attempt: int,
        exc: Exception,
        spec: Any,
        at_most_once: bool,
        bound: ActionLog,
    ) -> Outcome:
        """What an attempt that raised `exc` comes to: dead (permanent; uncertain under
        at-most-once with nothing to look up) or a retry."""
        if isinstance(exc, PermanentError):
            return self._dead(row, str(exc), bound)
        if isinstance(exc, UncertainError):
            if at_most_once and spec.find_existing is None and not spec.idempotent:
                return self._dead(row, f"uncertain; not repeated (at-most-once): {exc}", bound)
            return self._retry(row, attempt, exc, exc.retry_after, bound)
        if isinstance(exc, TransientError):
            return self._retry(row, attempt, exc, exc.retry_after, bound)
        # a bug or an unmapped library error: retry, then dead
        bound.error("action.unexpected_error", exc_info=exc)
        return self._retry(row, attempt, exc, None, bound)

    def _may_repeat(self, row: ActionRow, connector: Connector) -> bool:
        """True when a first attempt may repeat an effect made under a store that was lost
        or restored from a backup: the action was planned before this process started, or
        its change happened at the source before then. A change with no time of its own (a
        schedule firing, localdb's counters) is judged by when it was planned: within the
        window after the start, when catch-up firings are planned, it looks first.

        Live changes (the common case) skip the look-up: a burst of webhooks just after a
        restart costs no extra request per create."""
        if row.created_at < self.started_ms:
            return True
        version = None
        if row.event_id is not None and connector.golive_baseline:
            version = row.event_version  # read with the claim
            if version is None:
                version = event_version(self.store, row.event_id)
        if version is not None:
            return version < self.started_ms
        return row.created_at < self.look_first_before

    def _repeat_is_harmless(self, row: ActionRow) -> bool:
        """True when performing the action again after a crash cannot double its effect: it
        is looked up first (a finder) or idempotent by itself."""
        spec = self._spec(row)
        return spec is not None and (spec.find_existing is not None or spec.idempotent)

    def _finish(self, row: ActionRow, **values: Any) -> None:
        now = to_ms(self.clock.now())
        # the attempt's record too, for the console's action page
        finish_action(self.store, row.id, now, attempt=row.attempts + 1, **values)

    def _done(self, row: ActionRow, result: ActionResult, bound: ActionLog) -> Outcome:
        ACTIONS_FINISHED.labels(row.connector, "done").inc()
        values = {
            "status": "done",
            "external_id": result.external_id,
            "external_url": result.url,
            "last_error": None,
        }
        later = _DONE_LATER.get()
        if later is not None and self._repeat_is_harmless(row):
            later.append(Finish(row.id, row.attempts + 1, to_ms(self.clock.now()), values))
        else:
            self._finish(row, **values)
        bound.info("action.done", external_id=result.external_id)
        return Outcome(row.key, "done")

    def _retry(
        self,
        row: ActionRow,
        attempt: int,
        exc: Exception,
        retry_after: float | None,
        bound: ActionLog,
    ) -> Outcome:
        reason = self.redact(f"{type(exc).__name__}: {exc}")[:2000]
        # Alerts retry until the mail server is back: they are how ops hear of an outage.
        if self.policy.exhausted(attempt) and not row.rule_id.startswith("syncd.alert"):
            return self._dead(row, f"gave up after {attempt} attempts; last error: {reason}", bound)
        ACTIONS_FINISHED.labels(row.connector, "retry").inc()
        delay = self.policy.delay(attempt, retry_after)
        next_at = to_ms(self.clock.now()) + int(delay * 1000)
        self._finish(row, status="pending", next_attempt_at=next_at, last_error=reason)
        bound.warning("action.retry", error=reason, retry_in_seconds=round(delay, 3))
        return Outcome(row.key, "pending", reason)

    def _dead(self, row: ActionRow, reason: str, bound: ActionLog) -> Outcome:
        reason = self.redact(reason)[:2000]
        ACTIONS_FINISHED.labels(row.connector, "dead").inc()
        self._finish(row, status="dead", last_error=reason)
        bound.error("action.dead", error=reason)
        if self.on_dead is not None:
            try:
                self.on_dead(row, reason)
            except Exception:  # an alert failure must not undo the dead-letter record
                bound.exception("alert.failed")
        return Outcome(row.key, "dead", reason)


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
    )
