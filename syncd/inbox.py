"""The webhook inbox: deliveries are stored durably before the 2xx, then processed.

`InboxWriter` is a group commit: the HTTP handlers hand deliveries to one writer thread,
which stores whatever has queued up in a single transaction and then answers every waiting
handler. Under load one fsync serves hundreds of deliveries; idle, a delivery is committed
at once.

`InboxProcessor` turns stored deliveries into ingests: parse (connector), fetch the hinted
objects (connector, in batch reads where it has them, outside any transaction), then ingest
and mark the deliveries done in one transaction. A fetch that fails transiently leaves the
delivery for a later try.

A delivery that cannot be parsed is permanent: retrying a malformed body cannot help, so it
is marked failed at once, with its reason (`syncd inbox list --status failed`). Only a
transient error (the API behind an Airtable ping was down) is retried. One bad delivery
never holds up the others: when the batch's transaction fails, each delivery is committed
on its own, so only the one that breaks it is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from syncd import crashpoints
from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import PermanentError, TransientError, WebhookRejected
from syncd.ingest import Ingestor
from syncd.lookups import LookupsNotReady
from syncd.model import Observation, WebhookRequest
from syncd.osthreads import start_thread
from syncd.retry import RetryPolicy
from syncd.store import inbox as stored
from syncd.store.db import Store
from syncd.store.inbox import DeliveryRow

log = structlog.get_logger("syncd.inbox")

# Errors of a parse that would fail the same way every time: the stored delivery is malformed.
PERMANENT_PARSE_ERRORS = (
    WebhookRejected,
    PermanentError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    RecursionError,
)


def parse_failure(exc: Exception) -> str | None:
    """The reason a parse failed for good, or None when trying again may help."""
    if isinstance(exc, TransientError):
        return None
    if isinstance(exc, WebhookRejected):
        return f"unparseable delivery: {exc.reason}"
    if isinstance(exc, PERMANENT_PARSE_ERRORS):
        return f"unparseable delivery: {type(exc).__name__}: {exc}"
    return None


@dataclass
class Delivery:
    connector: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    received_at: int
    done: Future[bool] | asyncio.Future[bool] | None = None  # set by submit() or accept()


Outcome = bool | BaseException  # True: stored, False: seen before; or why it was not stored


def _set(waiter: Future[bool] | asyncio.Future[bool], outcome: Outcome) -> None:
    if isinstance(outcome, BaseException):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


def _settle_on_loop(answers: list[tuple[asyncio.Future[bool], Outcome]]) -> None:
    for waiter, outcome in answers:
        if not waiter.done():  # a handler that gave up (its client went away) is cancelled
            _set(waiter, outcome)


def answer(batch: list[Delivery], outcomes: list[Outcome]) -> None:
    """Answer each delivery's waiter. Waiters on an event loop are answered with one
    `call_soon_threadsafe` per loop and batch: one wake-up of the loop for the whole group
    commit, not one (and a thread Future, with its lock and condition) per delivery."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], Outcome]]] = {}
    for delivery, outcome in zip(batch, outcomes, strict=True):
        waiter = delivery.done
        if isinstance(waiter, asyncio.Future):
            on_loops.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        elif waiter is not None:
            _set(waiter, outcome)
    for loop, answers in on_loops.items():
        # A loop that has closed raises RuntimeError: nobody waits for these answers.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_on_loop, answers)


class StoredHandoff(Protocol):
    """Where the writer can hand deliveries it has just stored (the inbox processor of a
    daemon whose inbox thread is idle): `ready` before the transaction, `offer` after it.
    A lone delivery may be shown to it before the transaction too (`prefetch`), for its
    objects to be fetched while the transaction commits; `settle` then says the write is
    over (True: the delivery's fetch waits for it, and takes what `offer` handed)."""

    def ready(self) -> bool: ...
    def prefetch(self, delivery: Delivery) -> bool: ...
    def offer(self, rows: list[DeliveryRow]) -> bool: ...
    def settle(self) -> bool: ...


HANDOFF_MAX = 100  # deliveries a commit may hand over at once (more: the inbox claims them)
# How long a delivery's early fetch waits for its transaction, once done: a commit takes a
# millisecond or two; past this, the inbox thread goes on and is woken as usual.
EARLY_WAIT_SECONDS = 1.0


class InboxWriter:
    """Group-committing writer. `submit` returns a Future: True if stored, False if the
    delivery id was seen before (acknowledged and ignored)."""

    def __init__(self, store: Store, max_batch: int = 512) -> None:
        self.store = store
        self.max_batch = max_batch
        # A SimpleQueue, not a Queue: a put runs on the event loop thread for every webhook,
        # and Queue.put takes a Python-level lock and notifies a condition each time.
        self._queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._thread = start_thread(self._run, "inbox-writer")
        self.batches = 0
        self.stored = 0
        # Called on the writer thread after a commit that stored a new delivery (the
        # daemon: wake the inbox thread), before the waiting handlers are answered.
        self.on_stored: Callable[[], None] | None = None
        self.handoff: StoredHandoff | None = None

    def submit(self, delivery: Delivery) -> Future[bool]:
        """From any thread: a Future answered once the delivery's batch is committed."""
        done: Future[bool] = Future()
        delivery.done = done
        self._queue.put(delivery)
        return done

    async def accept(self, delivery: Delivery) -> bool:
        """From an event loop (the webhook handlers): True once stored, False when the
        delivery id was seen before; raises what kept the batch from being stored."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        delivery.done = waiter
        self._queue.put(delivery)
        return await waiter

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[Delivery]) -> None:
        early = self._show_early(batch)
        try:
            handed: list[DeliveryRow] = []
            with self.store.tx() as conn:
                row_ids = self._insert_new(conn, batch)
                fresh = [row_id is not None for row_id in row_ids]
                handing = self.handoff is not None and 0 < sum(fresh) <= HANDOFF_MAX
                if handing and self.handoff is not None and self.handoff.ready():
                    handed = self._stored_rows(batch, row_ids)
            crashpoints.hit("inbox_committed")
        except Exception as exc:  # the handlers answer 503 and the sender retries
            if early and self.handoff is not None:
                self.handoff.settle()  # nothing stored: what was fetched is dropped
            answer(batch, [exc] * len(batch))
            return
        self.batches += 1
        self.stored += sum(fresh)
        offered = False
        if any(fresh) and self.handoff is not None:
            offered = self.handoff.offer(handed)  # [] (not read back): the inbox must claim
        # The inbox thread fetching the delivery early waits for this and takes what was
        # offered: no wake-up (it would make it claim, in vain, once done).
        taken = early and self.handoff is not None and self.handoff.settle() and offered
        if any(fresh) and self.on_stored is not None and not taken:
            try:
                self.on_stored()
            except Exception:  # the deliveries are stored: the handlers still get their 2xx
                log.exception("inbox.on_stored_failed")
        answer(batch, list(fresh))

    def _show_early(self, batch: list[Delivery]) -> bool:
        """A lone delivery, shown to an idle inbox thread before its transaction: the objects
        it names are fetched while it commits (issue 17: an idle webhook waited for both, one
        after the other). Only reads happen early: the delivery is ingested only once stored
        and handed over (`offer`), as any other."""
        return len(batch) == 1 and self.handoff is not None and self.handoff.prefetch(batch[0])

    @staticmethod
    def _stored_rows(batch: list[Delivery], row_ids: list[int | None]) -> list[DeliveryRow]:
        """The new deliveries as the inbox's claim would read them (ids from the insert)."""
        return [
            DeliveryRow(
                id=row_id,
                connector=d.connector,
                delivery_id=d.delivery_id,
                received_at=d.received_at,
                headers=d.headers,
                body=d.body,
                status="pending",
                attempts=0,
                next_attempt_at=0,
                last_error=None,
            )
            for d, row_id in zip(batch, row_ids, strict=True)
            if row_id is not None
        ]

    def _insert_new(self, conn: Any, batch: list[Delivery]) -> list[int | None]:
        """One statement per batch, whatever its size: an insert of every delivery that
        skips those stored already; the row id of each it stored (None: stored before)."""
        rows = [
            {
                "connector": d.connector,
                "delivery_id": d.delivery_id,
                "headers": d.headers,
                "body": d.body,
                "received_at": d.received_at,
            }
            for d in batch
        ]
        return stored.add_delivery_rows(self.store, conn, rows)


class Handoff(Protocol):
    """Where actions planned by an inbox commit can go at once (the daemon's idle executor
    threads): `claim` inside the commit's transaction, then `give` after it commits, or
    `drop` when it does not."""

    def claim(self, conn: Any) -> list[Any]: ...
    def give(self, rows: list[Any]) -> None: ...
    def drop(self, rows: list[Any]) -> None: ...


class InboxProcessor:
    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        ingestor: Ingestor,
        clock: Clock,
        policy: RetryPolicy | None = None,
        lease_seconds: float = 120,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.ingestor = ingestor
        self.clock = clock
        self.policy = policy or RetryPolicy(max_attempts=20)
        self.lease_ms = int(lease_seconds * 1000)
        self.redact = redact
        self.handoff: Handoff | None = None
        # Deliveries the intake writer handed over just stored (`offer`), taken instead of a
        # claim. Only where no other thread or replica claims from this inbox (the daemon
        # on SQLite with one inbox thread): a handed delivery is not leased, so a crash
        # leaves it due at once, as if never handed.
        self.accept_handed = False
        self._handed: list[DeliveryRow] = []
        self._hand_lock = threading.Lock()
        self._settled = threading.Condition(self._hand_lock)
        # A lone delivery shown before its commit (`prefetch`), to fetch what it names while
        # it commits; what that fetch found, used by this round only. `wake` (the daemon's)
        # lets the inbox thread go.
        self.wake: Callable[[], None] | None = None
        self._early: Delivery | None = None
        self._early_settled = True
        self._early_waiting = False  # the early fetch waits for `settle`
        self._early_wake = False  # the inbox thread was woken for an early fetch
        self._early_found: dict[Any, Observation] = {}
        self._busy = False  # in process_due: an offer now could race with its claim
        # Nothing is due but what was handed: the last claim came back short and every
        # delivery stored since was handed. Otherwise a claim gathers them all: a hand-off
        # is for a lone delivery on an idle inbox, and never splits a batch.
        self._clean = False
        self._unclaimed: set[int] = set()  # ids of the handed deliveries being processed

    def ready(self) -> bool:
        return self.accept_handed and self._clean and not self._busy

    def prefetch(self, delivery: Delivery) -> bool:
        """Show a delivery about to be stored to the idle inbox thread, which fetches what it
        names meanwhile; False (nothing done) unless the thread is idle and has a `wake`.
        Not for a connector that keeps what a parse read until `acknowledge_webhook`
        (Airtable's payload cursor): its deliveries are parsed once, as usual."""
        connector = self.connectors.get(delivery.connector)
        if connector is None or connector.can("acknowledge_webhook"):
            return False
        with self._hand_lock:
            if self.wake is None or not self.ready() or not self._early_settled:
                return False
            self._early, self._early_settled, self._early_waiting = delivery, False, False
            self._early_wake = True
        self.wake()
        return True

    def settle(self) -> bool:
        """The shown delivery's write is over (offered, a duplicate, or failed). True when
        its early fetch is waiting for this: it takes what was offered."""
        with self._settled:
            self._early_settled = True
            self._early = None  # not taken yet: processed as usual, if offered
            self._settled.notify_all()
            return self._early_waiting

    def offer(self, rows: list[DeliveryRow]) -> bool:
        with self._hand_lock:
            if not rows or not self.ready():
                self._clean = False  # the claim under way, or the next one, takes them
                return False
            self._handed.extend(rows)
            return True

    def claim(self, limit: int) -> list[DeliveryRow]:
        """Take due deliveries; pushing next_attempt_at forward is the lease: if this process
        dies, the delivery becomes due again when it runs out."""
        now = to_ms(self.clock.now())
        return stored.claim_due_deliveries(self.store, now, self.lease_ms, limit)

    def process_due(self, limit: int = 100) -> int:
        with self._hand_lock:
            early, self._early = self._early, None
            woken_early, self._early_wake = self._early_wake, False
        if early is not None:
            self._early_found = self._fetch_early(early)
        if woken_early and self._nothing_due():  # not stored after all (seen before, failed)
            self._early_found = {}
            return 0
        try:
            return self._process_due(limit)
        finally:
            self._early_found = {}

    def _fetch_early(self, early: Delivery) -> dict[Any, Observation]:
        """What the shown delivery names, fetched while its transaction commits; returns
        once the writer has settled it."""
        with self._hand_lock:
            if self._early_settled:  # settled before this thread took it: as usual
                return {}
            self._early_waiting = True
        try:
            return self._fetch_named(early)
        finally:
            with self._settled:
                self._settled.wait_for(lambda: self._early_settled, EARLY_WAIT_SECONDS)
                self._early_waiting = False  # a later verdict wakes this thread as usual

    def _nothing_due(self) -> bool:
        """Nothing handed, and nothing else due (see `_clean`): no claim needed."""
        with self._hand_lock:
            return not self._handed and self._clean and self._early_settled

    def _fetch_named(self, delivery: Delivery) -> dict[Any, Observation]:
        """The observations of the objects a delivery names (none when anything fails: the
        usual path parses it and fetches them again, and says why)."""
        connector = self.connectors.get(delivery.connector)
        if connector is None:
            return {}
        request = WebhookRequest("POST", "", delivery.headers, delivery.body, delivery.received_at)
        try:
            hints = connector.parse_webhook(request)
        except Exception:
            return {}
        fetched = self._fetch_hinted(connector, hints)
        return {ref: obs for ref, obs in fetched.items() if isinstance(obs, Observation)}

    def _process_due(self, limit: int) -> int:
        with self._hand_lock:
            handed, self._handed = self._handed, []
            self._busy = True  # offers from now on are refused, and make it unclean
            if not handed:  # the claim below reads all that was committed before it
                self._clean = True
        try:
            # Handed deliveries were stored after any claim of this thread's, and none other
            # claims here: no claim needed (and none this round, which would read them too).
            if handed:
                self._unclaimed = {r.id for r in handed}
                return self._process(handed)
            rows = self.claim(limit)
            if len(rows) >= limit:
                with self._hand_lock:
                    self._clean = False  # more may be due
            return self._process(rows)
        finally:
            self._unclaimed = set()
            with self._hand_lock:
                self._busy = False

    def _process(self, rows: list[DeliveryRow]) -> int:
        groups: dict[str, list[DeliveryRow]] = {}
        for row in rows:
            groups.setdefault(row.connector, []).append(row)
        for name, group in groups.items():
            self._process_group(name, group)
        return len(rows)

    def drain(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            n = self.process_due()
            if not n:
                break
            total += n
        return total

    def _process_group(self, name: str, rows: list[DeliveryRow]) -> None:
        """Deliveries of one connector together: an object hinted by many deliveries (a
        burst of edits) is fetched once, and all is ingested in one transaction."""
        bound = log.bind(source=name)
        connector = self.connectors.get(name)
        if connector is None:
            for row in rows:
                self._fail(row, f"connector {name!r} is not configured", bound)
            return
        parsed = []
        for row in rows:
            request = WebhookRequest("POST", "", row.headers, row.body, row.received_at)
            try:
                hints = connector.parse_webhook(request)
                self.ingestor.check_ready((h.ref.source, h.ref.type) for h in hints)
                parsed.append((row, request, hints))
            except Exception as exc:
                reason = parse_failure(exc)
                if reason is not None:
                    self._fail(row, reason, bound)
                else:
                    self._retry(row, exc, getattr(exc, "retry_after", None), bound)
        fetched = self._fetch_hinted(
            connector, [h for _, _, hints in parsed for h in hints], known=self._early_found
        )
        ready = []
        for row, request, hints in parsed:
            failure = next(
                (
                    fetched[h.ref]
                    for h in hints
                    if h.observation is None and isinstance(fetched[h.ref], Exception)
                ),
                None,
            )
            if isinstance(failure, PermanentError):
                self._fail(row, self.redact(f"fetch failed for good: {failure}")[:2000], bound)
            elif failure is not None:
                self._retry(row, failure, getattr(failure, "retry_after", None), bound)
            else:
                own = [
                    h.observation if h.observation is not None else fetched[h.ref] for h in hints
                ]
                ready.append((row, request, own))
        if not ready:
            return
        if not self._commit(connector, ready, bound, retry_on_failure=len(ready) == 1):
            for one in ready:  # find the delivery that breaks the batch; commit the others
                self._commit(connector, [one], bound, retry_on_failure=True)

    @staticmethod
    def _fetch_hinted(
        connector: Connector, hints: list[Any], known: dict[Any, Observation] | None = None
    ) -> dict[Any, Any]:
        """Each hinted object read once: its observation, or the exception that stopped it.

        Objects of one type go to `fetch_many` in batches when the connector has it (1,000
        hinted deals: 20 batch reads, not 3,000 requests); what a batch leaves out or fails
        on is fetched one by one, so a bad object is handled alone. `known`: observations
        fetched already this round (early, see `prefetch`), not read again."""
        named = dict.fromkeys(h.ref for h in hints if h.observation is None)
        out: dict[Any, Any] = {ref: known[ref] for ref in named if known and ref in known}
        wanted = [ref for ref in named if ref not in out]
        if connector.can("fetch_many") and wanted:
            by_type: dict[str, list[Any]] = {}
            for ref in wanted:
                by_type.setdefault(ref.type, []).append(ref)
            size = max(1, connector.fetch_batch_size)
            for refs in by_type.values():
                for start in range(0, len(refs), size):
                    out.update(InboxProcessor._fetch_batch(connector, refs[start : start + size]))
        for ref in wanted:
            if ref not in out:
                out[ref] = InboxProcessor._fetch_one(connector, ref)
        return out

    @staticmethod
    def _fetch_batch(connector: Connector, refs: list[Any]) -> dict[Any, Any]:
        """The observations a batch read found. A transient failure (429, timeout) is every
        object's: they are retried later together, not re-read one by one against a limit
        already reached. Any other failure may be one object's doing: {} (each read alone)."""
        try:
            found = connector.fetch_many(refs)
        except TransientError as exc:
            return dict.fromkeys(refs, exc)
        except Exception as exc:
            log.warning(
                "inbox.batch_fetch_failed",
                source=connector.name,
                objects=len(refs),
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            return {}
        wanted = set(refs)
        return {ref: obs for ref, obs in found.items() if ref in wanted and obs is not None}

    @staticmethod
    def _fetch_one(connector: Connector, ref: Any) -> Any:
        try:
            obs = connector.fetch(ref)
        except Exception as exc:
            if not isinstance(exc, TransientError):
                log.exception("inbox.fetch_failed", source=connector.name, ref=str(ref))
            return exc
        return obs if obs is not None else Observation(ref, {}, None, deleted=True)

    def _commit(
        self,
        connector: Connector,
        ready: list[tuple[DeliveryRow, WebhookRequest, list[Observation]]],
        bound: Any,
        retry_on_failure: bool,
    ) -> bool:
        """Ingest the deliveries' observations (each object once) and mark them done, in one
        transaction. On failure the deliveries are retried later if `retry_on_failure`, and
        False is returned (deliveries deferred while lookups are missing count as handled)."""
        crashpoints.hit("inbox_before_commit")
        # A fetched object hinted by several deliveries is one shared Observation: ingest it once.
        observations = list({id(obs): obs for _, _, own in ready for obs in own}.values())
        claimed: list[Any] = []
        try:
            try:
                with self.store.tx() as conn:
                    result = self.ingestor.ingest(observations, conn=conn)
                    stored.mark_deliveries_done(self.store, conn, [r.id for r, _, _ in ready])
                    if result.actions and self.handoff is not None:
                        claimed = self.handoff.claim(conn)
            except BaseException:
                if claimed and self.handoff is not None:  # rolled back: not claimed after all
                    self.handoff.drop(claimed)
                raise
        except LookupsNotReady as exc:  # waiting, not failing: every delivery is deferred
            for row, _, _ in ready:
                self._retry(row, exc, exc.retry_after, bound)
            return True
        except Exception as exc:  # database trouble or a bad delivery: try again later
            bound.exception("inbox.commit_failed", deliveries=len(ready))
            if retry_on_failure:
                for row, _, _ in ready:
                    self._retry(row, exc, None, bound)
            return False
        if claimed and self.handoff is not None:
            self.handoff.give(claimed)
        for _, request, _ in ready:
            connector.acknowledge_webhook(request)
        bound.info(
            "inbox.processed",
            deliveries=len(ready),
            objects=result.observed,
            events=result.events,
            actions=result.actions,
        )
        return True

    def _retry(
        self, row: DeliveryRow, exc: Exception, retry_after: float | None, bound: Any
    ) -> None:
        attempt = row.attempts + 1
        reason = self.redact(f"{type(exc).__name__}: {exc}")[:2000]
        if isinstance(exc, LookupsNotReady):  # waiting is not failing: no attempt counted
            self._defer(row, exc, reason, bound)
            return
        if self.policy.exhausted(attempt):
            self._fail(row, f"gave up after {attempt} attempts: {reason}", bound)
            return
        next_at = to_ms(self.clock.now()) + int(self.policy.delay(attempt, retry_after) * 1000)
        # A handed delivery had no claim to count its attempt: counted here.
        counted = attempt if row.id in self._unclaimed else None
        stored.retry_delivery_later(self.store, row.id, next_at, reason, attempts=counted)
        bound.warning("inbox.retry", error=reason)

    def _defer(self, row: DeliveryRow, exc: LookupsNotReady, reason: str, bound: Any) -> None:
        next_at = to_ms(self.clock.now()) + int((exc.retry_after or 1.0) * 1000)
        stored.retry_delivery_later(self.store, row.id, next_at, reason, attempts=row.attempts)
        bound.info("inbox.waiting", reason=reason)

    def _fail(self, row: DeliveryRow, reason: str, bound: Any) -> None:
        reason = self.redact(reason)
        stored.fail_delivery(self.store, row.id, reason)
        bound.error("inbox.failed", error=reason)
