"""The rate governor: margins under every limit, pauses that stop every kind of request,
in-flight accounting, replica shares, and the server's headers of the four APIs."""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.clock import FakeClock, SystemClock
from syncd.governor import (
    READ,
    SEARCH,
    WRITE,
    Applicable,
    Governor,
    GovernorStopped,
    Limit,
    LocalWindows,
    NoBudgetInTime,
    window_wait,
)


def github(clock: FakeClock, **kw: object) -> Governor:
    return Governor(
        "github",
        [Limit("core", 5000, 3600), Limit("writes", 80, 60, frozenset({WRITE}))],
        clock=clock,
        **kw,
    )


def max_in_any_window(starts: list[float], period: float) -> int:
    window: deque[float] = deque()
    most = 0
    for start in starts:
        window.append(start)
        while window[0] <= start - period:
            window.popleft()
        most = max(most, len(window))
    return most


def test_a_backlog_drains_under_the_margin_and_near_it() -> None:
    clock = FakeClock()
    gov = github(clock)
    starts = []
    for _ in range(1000):
        with gov.permit(WRITE):
            starts.append(clock.now().timestamp())
    assert max_in_any_window(starts, 60) == 72  # 90% of GitHub's 80 writes a minute
    ten_minutes = sum(1 for s in starts if s < starts[0] + 600)
    print(f"1,000 writes: {ten_minutes / 10:.1f}/min sustained against a limit of 80/min")
    assert ten_minutes == 720  # and the budget is used to the full


def test_reads_are_not_held_back_by_the_write_limit() -> None:
    clock = FakeClock()
    gov = github(clock)
    for _ in range(72):
        gov.acquire(WRITE)
        gov.release()
    assert gov.wait_needed(WRITE) > 0
    assert gov.wait_needed(READ) == 0


def test_a_429_on_a_read_stops_writes_and_reads_until_retry_after() -> None:
    clock = FakeClock()
    gov = github(clock)
    gov.acquire(READ)
    asked_at = clock.now().timestamp()
    assert gov.observe(429, {"Retry-After": "30"}) == 30
    gov.release()
    assert gov.throttled == 1
    for kind in (WRITE, READ):
        assert gov.wait_needed(kind) == pytest.approx(30)
    gov.acquire(WRITE)
    assert clock.now().timestamp() - asked_at >= 30
    gov.release()


def test_an_exhausted_github_budget_waits_for_the_reset_instant() -> None:
    clock = FakeClock()
    gov = github(clock)
    reset = clock.now().timestamp() + 600
    wait = gov.observe(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset))})
    assert wait == pytest.approx(600, abs=1)
    assert gov.throttled == 0  # a 200 that says "last one" is no violation
    assert gov.wait_needed(READ) == pytest.approx(600, abs=1)


def test_jira_reset_given_as_an_iso_instant() -> None:
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    gov = Governor("jira", [Limit("all", 100, 1)], clock=clock)
    gov.observe(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-01-05T09:00:20Z"})
    assert gov.paused_for() == pytest.approx(20)


def test_hubspot_interval_header_pauses_the_interval() -> None:
    clock = FakeClock()
    gov = Governor(
        "hubspot",
        [Limit("general", 100, 10), Limit("search", 5, 1, frozenset({SEARCH}))],
        clock=clock,
    )
    gov.observe(
        200,
        {
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
    )
    assert gov.wait_needed(SEARCH) == pytest.approx(10)


def test_airtable_429_means_the_lockout_for_everyone() -> None:
    clock = FakeClock()
    gov = Governor("airtable", [Limit("base", 5, 1)], clock=clock, lockout_seconds=30)
    gov.observe(429, {})
    assert gov.wait_needed(WRITE) == pytest.approx(30)
    assert gov.last_pause_reason == "HTTP 429"


def test_in_flight_requests_are_counted_until_released() -> None:
    gov = github(FakeClock())
    with gov.permit(READ), gov.permit(WRITE):
        assert gov.in_flight == 2
    assert gov.in_flight == 0


def test_max_wait_gives_up_instead_of_blocking() -> None:
    clock = FakeClock()
    gov = github(clock)
    gov.pause(120, "test")
    before = clock.now()
    with pytest.raises(NoBudgetInTime) as caught:
        gov.acquire(WRITE, max_wait=5)
    assert caught.value.retry_after == pytest.approx(120)
    assert clock.now() == before  # it did not sleep through the pause


def test_close_wakes_waiters_on_the_system_clock() -> None:
    gov = Governor("github", [Limit("core", 1, 3600)], clock=SystemClock())
    gov.acquire(READ)
    gov.release()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            gov.acquire(READ)
        except GovernorStopped as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    gov.close()
    waiter.join(timeout=2)
    assert not waiter.is_alive() and len(errors) == 1


def test_threads_together_never_pass_the_limit() -> None:
    """Eight threads on the real clock: no 0.5 s window holds more than 90% of 20."""
    gov = Governor("airtable", [Limit("base", 20, 0.5)], clock=SystemClock())
    starts: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 1.6

    def worker() -> None:
        while time.monotonic() < deadline:
            with gov.permit(WRITE), lock:
                starts.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    # A thread stamps its start just after the governor let it go, and a busy machine may
    # preempt it in between: stamps within 0.4 s stand for starts within 0.5 s unless a
    # thread was held up for more than 0.1 s.
    assert max_in_any_window(sorted(starts), 0.4) <= 18
    assert len(starts) >= 18 * 3  # and it kept going at about that pace


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limit("x", 0, 1)
    with pytest.raises(ValueError):
        Limit("x", 1, 1, frozenset({"delete"}))
    with pytest.raises(ValueError):
        Governor("x", [], margin=1.5)


def test_a_cost_based_limit_counts_writes_by_their_cost() -> None:
    """Jira: a write costs more of the budget than a read (here 3 units of 20 per 10 s)."""
    clock = FakeClock()
    gov = Governor("jira", [Limit("cost", 20, 10, costs=((WRITE, 3),))], clock=clock)
    for _ in range(6):  # 18 of the 18 units the margin allows
        with gov.permit(WRITE):
            pass
    assert gov.budget_left() == {"cost": 0}
    assert gov.wait_needed(READ) == pytest.approx(10)
    clock.advance(seconds=10)
    for _ in range(18):
        with gov.permit(READ):
            pass
    assert gov.wait_needed(READ) > 0


def test_a_fractional_share_stretches_the_window_instead_of_rounding_down() -> None:
    clock = FakeClock()
    airtable = Governor("airtable", [Limit("base", 5, 1.0)], clock=clock, margin=0.9)
    kept, allowed = airtable.window(airtable.limits[0])
    assert (allowed, round(kept.per_seconds, 3)) == (5, 1.111)  # 4.5/s, not 4/s
    starts = []
    for _ in range(46):
        airtable.acquire(READ)
        airtable.release(READ, clock.now().timestamp())
        starts.append(clock.now().timestamp())
    assert max_in_any_window(starts, 1.0) == 5  # never a 6th in any second
    assert 45 / (starts[-1] - starts[0]) >= 4.49  # 9 bursts of 5 in 10 s: 90% of 5/s

    hubspot = Governor("hubspot", [Limit("general", 100, 10.0)], clock=clock, margin=0.9)
    kept, allowed = hubspot.window(hubspot.limits[0])
    assert (allowed, kept.per_seconds) == (90, 10.0)  # a whole share keeps the window


class ListWindows:
    """The windows as first written (a scan per answer): the reference for LocalWindows,
    which keeps the same counts in O(1) per request."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}
        self.answers: dict[str, list[float]] = {}

    def _fresh(self, table: dict[str, list[float]], limit: Limit, now: float) -> list[float]:
        kept = [s for s in table.get(limit.name, []) if s > now - limit.per_seconds]
        table[limit.name] = kept
        return kept

    def peek(self, limits: Sequence[Applicable], now: float) -> float:
        wait = 0.0
        for kept, allowed, cost, documented in limits:
            starts = self._fresh(self.starts, kept, now)
            answers = self._fresh(self.answers, documented, now)
            wait = max(
                wait,
                window_wait(starts, allowed, kept.per_seconds, now, cost),
                window_wait(answers, documented.requests, documented.per_seconds, now, cost),
            )
        return wait

    def take(self, limits: Sequence[Applicable], now: float) -> float:
        wait = self.peek(limits, now)
        if wait <= 0:
            for kept, _, cost, documented in limits:
                self.starts[kept.name] += [now] * cost
                self.answers[documented.name] += [now] * cost
        return wait

    def finish(self, limits: Sequence[Applicable], started: float, now: float) -> None:
        for _, _, cost, documented in limits:
            answers = self._fresh(self.answers, documented, now)
            for _ in range(cost):
                if started in answers:
                    answers.remove(started)
                bisect.insort(answers, now)


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.sampled_from([READ, READ, WRITE])),
        st.tuples(st.just("finish"), st.integers(0, 50)),  # which request in flight
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.25, 1.0, 7.0])),
    ),
    max_size=500,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
def test_local_windows_count_as_the_reference_does(steps: list[tuple[str, Any]]) -> None:
    """Starts, answers in any order, requests answered after their start left the window,
    cost-based limits, a roomy window: LocalWindows waits exactly as the plain lists do."""
    gov = Governor(
        "test",
        [
            Limit("reads", 80, 30, frozenset({READ})),  # roomy: answered starts pile up
            Limit("writes", 3, 4, frozenset({WRITE})),
            Limit("cost", 8, 5, frozenset({WRITE}), costs=((WRITE, 2),)),
        ],
        clock=FakeClock(),
        margin=1.0,  # kept windows = documented ones: the answers windows bind too
    )
    ours, reference = LocalWindows(), ListWindows()
    in_flight: list[tuple[str, float]] = []
    now = 1000.0
    for step, arg in steps:
        if step == "advance":
            now += arg
        elif step == "take":
            limits = gov._applicable(arg)
            wait = ours.take(limits, now)
            assert wait == reference.take(limits, now)
            if wait <= 0:
                in_flight.append((arg, now))
        elif in_flight:
            kind, started = in_flight.pop(arg % len(in_flight))
            ours.finish(gov._applicable(kind), started, now)
            reference.finish(gov._applicable(kind), started, now)
        for kind in (READ, WRITE):
            assert ours.peek(gov._applicable(kind), now) == reference.peek(
                gov._applicable(kind), now
            )
        for limit in gov.limits:  # and each window counts the same requests
            assert ours.used(limit, now) == len(reference._fresh(reference.starts, limit, now))
            assert len(ours._answered(limit, now)) == len(
                reference._fresh(reference.answers, limit, now)
            )


def test_local_windows_keep_counting_requests_in_flight_among_many_answered() -> None:
    """Hundreds of answered requests in a roomy window and a few still in flight (the
    bookkeeping drops the answered ones' starts in bulk): the ones in flight still count
    from their starts, and stop counting when their starts leave the window."""
    gov = Governor("test", [Limit("roomy", 1000, 60)], clock=FakeClock(), margin=1.0)
    limits = gov._applicable(READ)
    (limit,) = gov.limits
    ours, reference = LocalWindows(), ListWindows()
    now, open_ = 1000.0, []
    for i in range(600):
        assert ours.take(limits, now) == reference.take(limits, now) == 0
        if i % 50:
            ours.finish(limits, now, now + 0.05)
            reference.finish(limits, now, now + 0.05)
        else:
            open_.append(now)
        now += 0.1
        assert len(ours._answered(limit, now)) == len(
            reference._fresh(reference.answers, limit, now)
        )
    for later in (0.0, 20.0, 5.0, 30.0, 10.0):
        now += later
        assert len(ours._answered(limit, now)) == len(
            reference._fresh(reference.answers, limit, now)
        )
        assert ours.peek(limits, now) == reference.peek(limits, now)
    assert len(ours._answered(limit, now)) == 0
    for started in open_:  # answered at last: each counts from now
        ours.finish(limits, started, now)
        reference.finish(limits, started, now)
    assert len(ours._answered(limit, now)) == len(open_) == 12
