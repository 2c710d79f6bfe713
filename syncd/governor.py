"""One rate governor per API account: every request of that account asks it first.

A governor knows the account's documented limits (each a number of requests per window,
applying to some kinds of request: reads, writes, searches), keeps a margin under each, and
counts a request from the moment it is let through until its answer is in. When any answer
says "slow down" (Retry-After, an exhausted `x-ratelimit-remaining`, HubSpot's
`X-HubSpot-RateLimit-Remaining: 0`, Airtable's 429 lock-out) every kind of request pauses,
not only the one that got the answer.

Where the windows live is pluggable (`Windows`): in this process (`LocalWindows`, the
default, and all a single daemon on SQLite needs), or in the store (`syncd.shared_windows.
StoreWindows`, used on PostgreSQL), so that replicas together stay under the API's limit.
Why shared and not "each replica takes 1/N": see syncd/shared_windows.py.

The clock is injected, so with a FakeClock a test of "1,000 creates at 80/min" runs in
milliseconds: waiting advances the clock instead of sleeping.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from syncd.clock import Clock, SystemClock
from syncd.errors import TransientError
from syncd.http_errors import retry_after_seconds

READ, WRITE, SEARCH = "read", "write", "search"
ALL_KINDS = frozenset({READ, WRITE, SEARCH})
DEFAULT_MARGIN = 0.9

# Every governor alive, for /metrics (waits, 429s received, budget left, by API).
GOVERNORS: weakref.WeakSet[Governor] = weakref.WeakSet()


@dataclass(frozen=True)
class Limit:
    """At most `requests` requests of the kinds in `applies_to` in any `per_seconds` window."""

    name: str
    requests: int
    per_seconds: float
    applies_to: frozenset[str] = ALL_KINDS
    # Cost-based limits (Jira): a request of a kind listed here takes that many units of
    # `requests`; any other kind takes one.
    costs: tuple[tuple[str, int], ...] = ()

    def cost(self, kind: str) -> int:
        return dict(self.costs).get(kind, 1)

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError(f"limit {self.name}: requests must be >= 1 and per_seconds > 0")
        if not self.applies_to <= ALL_KINDS:
            raise ValueError(f"limit {self.name}: kinds are {sorted(ALL_KINDS)}")
        if any(
            kind not in ALL_KINDS or not 1 <= cost <= self.requests for kind, cost in self.costs
        ):
            raise ValueError(f"limit {self.name}: a cost is 1..requests for a known kind")


# Per applicable limit: the window syncd keeps (stretched, see Governor.window), the units
# it allows, the units this request takes (its cost), and the documented limit itself.
Applicable = tuple[Limit, int, int, Limit]


class Windows(Protocol):
    """Where a governor keeps its sliding windows and its pause (in seconds since the epoch).

    Two windows per limit: the starts, paced to the margin's share; and the answers, where
    a request counts from when its answer came in (it reached the server before that) for
    the documented window, with the documented number: however late a request leaves after
    its start was stamped (a busy machine, a slow thread), the server never sees more than
    the documented number in one of its windows."""

    def take(self, limits: Sequence[Applicable], now: float) -> float:
        """Stamp one start in every window and return 0, or return the seconds to wait."""
        ...

    def peek(self, limits: Sequence[Applicable], now: float) -> float:
        """The seconds `take` would wait now, stamping nothing."""
        ...

    def finish(self, limits: Sequence[Applicable], started: float, now: float) -> None:
        """The request started at `started` has its answer: count it from `now` in the
        documented windows (until then it counts from its start)."""
        ...

    def pause(self, until: float) -> None:
        """Nobody starts anything before `until`."""
        ...

    def paused_until(self) -> float: ...

    def used(self, limit: Limit, now: float) -> int:
        """Starts counted in `limit`'s current window."""
        ...


def window_wait(
    starts: Sequence[float], allowed: int, per_seconds: float, now: float, cost: int = 1
) -> float:
    """Seconds until `cost` more units fit a window holding `starts` (one per unit, oldest
    first, already expired), `allowed` at most."""
    if len(starts) + cost <= allowed:
        return 0.0
    # The units up to this one must leave the window before `cost` more fit.
    oldest = starts[min(len(starts) - 1, len(starts) + cost - allowed - 1)]
    return max(0.0, oldest + per_seconds - now)


class _Answered:
    """The answers window of one documented limit, kept so that every step of a request is
    O(1) (amortised): answer stamps, appended in time order; and the starts of requests
    still in flight, counted per stamp, with the stamps in a deque in start order for
    expiry. A request answered while its start is in the window leaves its stamp behind in
    the deque (dropped when it expires, or by an occasional compaction). A request counts
    from its start until its answer, then from the answer (`Windows.finish`)."""

    __slots__ = ("answers", "live", "live_count", "open")

    def __init__(self) -> None:
        self.answers: deque[float] = deque()
        self.open: deque[float] = deque()  # stamps of starts in flight (and answered ones)
        self.live: dict[float, int] = {}  # start stamp -> requests still in flight with it
        self.live_count = 0

    def expire(self, cutoff: float) -> None:
        """Forget everything stamped at or before `cutoff`."""
        answers, opened = self.answers, self.open
        while answers and answers[0] <= cutoff:
            answers.popleft()
        while opened and opened[0] <= cutoff:
            # A request still in flight whose start left the window stops counting until
            # its answer comes in (then it counts from the answer).
            self.live_count -= self.live.pop(opened.popleft(), 0)

    def start(self, now: float, cost: int) -> None:
        if now not in self.live:
            self.open.append(now)  # once per stamp: its expiry drops the stamp's whole count
        self.live[now] = self.live.get(now, 0) + cost
        self.live_count += cost

    def answer(self, started: float, now: float, cost: int) -> None:
        for _ in range(cost):
            left = self.live.get(started, 0)
            if left:  # its start is still in the window: it now counts from its answer
                if left == 1:
                    del self.live[started]
                else:
                    self.live[started] = left - 1
                self.live_count -= 1
            if not self.answers or self.answers[-1] <= now:
                self.answers.append(now)
            else:  # the clock went back: keep the window in order
                bisect.insort(self.answers, now)
        if len(self.open) > 2 * len(self.live) + 64:  # mostly answered stamps: compact
            self.open = deque(sorted(self.live))

    def __len__(self) -> int:
        return len(self.answers) + self.live_count

    def stamps(self) -> list[float]:
        """Every stamp counted, oldest first (only when the window is full: a wait)."""
        return sorted([*self.answers, *(s for s, n in self.live.items() for _ in range(n))])


class LocalWindows:
    """The default: windows in this process's memory (one daemon, or the SQLite store).
    Not thread-safe by itself: the governor calls it under its own lock. Every call is O(1)
    (amortised) per limit while there is budget left: it runs twice per request."""

    def __init__(self) -> None:
        self._starts: dict[str, deque[float]] = {}
        self._answers: dict[str, _Answered] = {}
        self._paused_until = 0.0

    def _window(self, limit: Limit, now: float) -> deque[float]:
        starts = self._starts.get(limit.name)
        if starts is None:
            starts = self._starts[limit.name] = deque()
        cutoff = now - limit.per_seconds
        while starts and starts[0] <= cutoff:
            starts.popleft()
        return starts

    def _answered(self, documented: Limit, now: float) -> _Answered:
        answered = self._answers.get(documented.name)
        if answered is None:
            answered = self._answers[documented.name] = _Answered()
        answered.expire(now - documented.per_seconds)
        return answered

    def peek(self, limits: Sequence[Applicable], now: float) -> float:
        wait = self._paused_until - now
        for kept, allowed, cost, documented in limits:
            starts = self._window(kept, now)
            if len(starts) + cost > allowed:
                wait = max(wait, window_wait(starts, allowed, kept.per_seconds, now, cost))
            answered = self._answered(documented, now)
            if len(answered) + cost > documented.requests:
                wait = max(
                    wait,
                    window_wait(
                        answered.stamps(), documented.requests, documented.per_seconds, now, cost
                    ),
                )
        return max(0.0, wait)

    def take(self, limits: Sequence[Applicable], now: float) -> float:
        wait = self.peek(limits, now)
        if wait <= 0:
            for kept, _, cost, documented in limits:
                self._window(kept, now).extend([now] * cost)
                self._answered(documented, now).start(now, cost)
        return wait

    def finish(self, limits: Sequence[Applicable], started: float, now: float) -> None:
        for _, _, cost, documented in limits:
            self._answered(documented, now).answer(started, now, cost)

    def pause(self, until: float) -> None:
        self._paused_until = max(self._paused_until, until)

    def paused_until(self) -> float:
        return self._paused_until

    def used(self, limit: Limit, now: float) -> int:
        return len(self._window(limit, now))


class NoBudgetInTime(TransientError):
    """`acquire(max_wait=...)` would have to wait longer: try again after `retry_after`."""


class GovernorStopped(TransientError):
    """A permit was asked for after `Governor.close()` (the daemon is stopping): the action
    is tried again later, by this daemon after a restart or by another replica."""


# Called with the seconds about to be waited, before a request waits for its turn: the
# executor sets it while it performs an action, to extend the action's lease so that no
# replica takes over an action that only waits (see Executor.perform).
BEFORE_WAIT: ContextVar[Callable[[float], None] | None] = ContextVar("before_wait", default=None)


class Governor:
    """The rate governor of one (API, credential)."""

    def __init__(
        self,
        api: str,
        limits: list[Limit],
        *,
        clock: Clock | None = None,
        margin: float = DEFAULT_MARGIN,
        lockout_seconds: float = 0.0,
        default_retry_after: float = 1.0,
        windows: Windows | None = None,
        account: str = "",
    ) -> None:
        if not 0 < margin <= 1:
            raise ValueError("margin must be in (0, 1]")
        names = [limit.name for limit in limits]
        if len(set(names)) != len(names):
            raise ValueError(f"{api}: limit names must be unique: {names}")
        self.api = api
        self.account = account  # names the credential for metrics and the store, never a secret
        self.limits = list(limits)
        self.clock = clock or SystemClock()
        self.margin = margin
        self.lockout_seconds = lockout_seconds  # Airtable: a 429 means 30 s for everyone
        self.default_retry_after = default_retry_after
        self.windows: Windows = windows or LocalWindows()
        self._applicable_by_kind: dict[str, list[Applicable]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.in_flight = 0
        self.sent = 0
        self.waits = 0
        self.waited_seconds = 0.0
        self.throttled = 0  # "slow down" answers received: the goal is 0
        self.last_pause_reason = ""
        GOVERNORS.add(self)

    def share_through(self, windows: Windows) -> None:
        """Keep the windows elsewhere from now on (the store, for replicas)."""
        with self._cond:
            self.windows = windows

    # -- asking -------------------------------------------------------------------------

    def allowed(self, limit: Limit) -> int:
        """How many requests (units) may start per window of `limit` (see `window`)."""
        return self.window(limit)[1]

    def window(self, limit: Limit) -> tuple[Limit, int]:
        """The window syncd keeps for `limit`, and how many units may start in it: the
        margin's share of the documented rate, never below the costliest request.

        When that share is a whole number (90% of 100 per 10 s: 90) the window is the
        documented one. When it is not (90% of Airtable's 5/s is 4.5), rounding down would
        lose a whole request per window (4/s, 80%); instead the documented number keeps its
        count and the window is stretched (5 per 1.11 s = 4.5/s): the rate is exactly the
        margin's, and no documented window ever sees more than the documented number."""
        most = max([1, *(cost for _, cost in limit.costs)])
        share = limit.requests * self.margin
        if share >= most and math.isclose(share, round(share), abs_tol=1e-9):
            return limit, round(share)
        if share < most:  # a tiny limit: at least the costliest request, window stretched
            return replace(limit, per_seconds=limit.per_seconds * most / share), most
        return replace(limit, per_seconds=limit.per_seconds / self.margin), limit.requests

    def _applicable(self, kind: str) -> list[Applicable]:
        # Worked out once per kind: the limits and the margin are fixed once constructed.
        found = self._applicable_by_kind.get(kind)
        if found is None:
            if kind not in ALL_KINDS:
                raise ValueError(f"unknown request kind {kind!r}")
            found = self._applicable_by_kind[kind] = [
                (*self.window(limit), limit.cost(kind), limit)
                for limit in self.limits
                if kind in limit.applies_to
            ]
        return found

    def wait_needed(self, kind: str = READ) -> float:
        """Seconds a request of `kind` would wait if asked now (0: it would go at once).
        The executor asks this before marking an action in flight, so that an action that
        only waits for its turn keeps its lease free for others."""
        applicable = self._applicable(kind)
        with self._cond:
            return self.windows.peek(applicable, self._now())

    def acquire(self, kind: str = READ, *, max_wait: float | None = None) -> float:
        """Block until a request of `kind` may start, then count it as started and in flight;
        returns the start's stamp, for `release`. With `max_wait`, give up (NoBudgetInTime)
        instead of waiting longer than that."""
        applicable = self._applicable(kind)
        waited = 0.0
        while True:
            with self._cond:
                if self._closed:
                    raise GovernorStopped(self.api)
                now = self._now()
                wait = self.windows.take(applicable, now)
                if wait <= 0:
                    self.in_flight += 1
                    self.sent += 1
                    if waited:
                        self.waits += 1
                        self.waited_seconds += waited
                    return now
            if max_wait is not None and waited + wait > max_wait:
                raise NoBudgetInTime(
                    f"{self.api}: no request budget within {max_wait:.1f}s", retry_after=wait
                )
            before_wait = BEFORE_WAIT.get()
            if before_wait is not None:
                before_wait(wait)
            self._sleep(wait)
            waited += wait

    def release(self, kind: str | None = None, started: float | None = None) -> None:
        """The request's answer is in (or it failed): it no longer counts as in flight, and
        (given its kind and start) counts from now in the documented windows."""
        with self._cond:
            if kind is not None and started is not None:
                self.windows.finish(self._applicable(kind), started, self._now())
            self.in_flight = max(0, self.in_flight - 1)
            self._cond.notify_all()

    @contextmanager
    def permit(self, kind: str = READ, *, max_wait: float | None = None) -> Iterator[None]:
        """`with governor.permit("write"): send()`: acquire before, release after."""
        started = self.acquire(kind, max_wait=max_wait)
        try:
            yield
        finally:
            self.release(kind, started)

    # -- listening ----------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str] | None) -> float | None:
        """Read an answer's rate-limit signals; pause everything when it says so. Returns
        the pause in seconds, or None when the answer asked for none."""
        lowered = {k.lower(): str(v) for k, v in (headers or {}).items()}
        if (
            status not in (403, 429, 503)
            and lowered.get("x-ratelimit-remaining") != "0"
            and lowered.get("x-hubspot-ratelimit-remaining") != "0"
        ):
            return None  # what `_server_wait` would find: nothing asks to wait (no clock read)
        now_dt = self.clock.now()
        wait = _server_wait(status, lowered, now_dt)
        if status == 429 or (status == 403 and wait is not None):
            self.throttled += 1
            if wait is None:
                wait = self.default_retry_after
            wait = max(wait, self.lockout_seconds)
        if wait is None:
            return None
        self.pause(wait, f"HTTP {status}" if status >= 400 else "budget exhausted")
        return wait

    def pause(self, seconds: float, reason: str) -> None:
        """Nobody of this account sends anything for `seconds`."""
        with self._cond:
            until = self._now() + max(0.0, seconds)
            if until > self.windows.paused_until():
                self.last_pause_reason = reason
            self.windows.pause(until)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every waiter with GovernorStopped (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reporting ----------------------------------------------------------------------

    def budget_left(self) -> dict[str, int]:
        """Per limit, how many more requests may start in the current window."""
        with self._cond:
            now = self._now()
            windows = [self.window(limit) for limit in self.limits]
            return {
                kept.name: max(0, allowed - self.windows.used(kept, now))
                for kept, allowed in windows
            }

    def paused_for(self) -> float:
        with self._cond:
            return max(0.0, self.windows.paused_until() - self._now())

    # -- inside -------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _sleep(self, seconds: float) -> None:
        seconds = max(seconds, 0.001)
        if isinstance(self.clock, SystemClock):
            with self._cond:  # woken early by close()
                self._cond.wait(seconds)
        else:
            self.clock.sleep(seconds)


# Every header `_server_wait` reads (lower case): callers holding a case-insensitive mapping
# (requests', urllib3's) pass only these to `Governor.observe`, not every header of an answer.
RATE_LIMIT_HEADERS = (
    "retry-after",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-hubspot-ratelimit-remaining",
    "x-hubspot-ratelimit-interval-milliseconds",
)


def _server_wait(status: int, lowered: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the server asked us to wait, from any of the headers the four APIs use."""
    after = retry_after_seconds(lowered, now)
    if after is not None and status in (403, 429, 503):
        return after
    # GitHub (and Jira's X-RateLimit-*): the budget is spent until the reset instant.
    if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
        reset = _reset_instant(lowered["x-ratelimit-reset"], now)
        if reset is not None:
            return reset
    # HubSpot: nothing left in the current interval.
    if lowered.get("x-hubspot-ratelimit-remaining") == "0":
        try:
            return int(lowered["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
        except (KeyError, ValueError):
            return 10.0
    return None


def _reset_instant(value: str, now: datetime) -> float | None:
    """`x-ratelimit-reset` as epoch seconds (GitHub) or an ISO 8601 instant (Jira)."""
    try:
        return max(0.0, float(value) - now.timestamp())
    except ValueError:
        pass
    try:
        return max(
            0.0, (datetime.fromisoformat(value.replace("Z", "+00:00")) - now).total_seconds()
        )
    except ValueError:
        return None


_SHARED: weakref.WeakValueDictionary[tuple[str, str], Governor] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def account_id(*parts: str) -> str:
    """A stable name for a credential (and the endpoint it is used against) that is safe to
    log and store: a short hash, never the secret."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def governor_for(api: str, account: str, clock: Clock, make: Callable[[], Governor]) -> Governor:
    """The one governor of (`api`, `account`) in this process: connector instances that use
    the same credential share it, as the API counts them together. (A governor on another
    clock, which only tests do, is not shared.)"""
    with _SHARED_LOCK:
        found = _SHARED.get((api, account))
        if found is None or found.clock is not clock or found.closed:
            found = make()
            _SHARED[(api, account)] = found
        return found
