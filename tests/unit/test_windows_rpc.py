"""The executor process's governors use the daemon's windows: one budget for both
(syncd.windows_rpc), over a real socket pair served by a real thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from syncd.clock import FakeClock
from syncd.governor import READ, WRITE, Governor, Limit
from syncd.windows_rpc import (
    BudgetUnreachable,
    WindowsClient,
    WindowsServer,
    share_with_daemon,
    socket_pair,
)


def github(clock: FakeClock) -> Governor:
    return Governor(
        "github",
        [Limit("core", 5000, 3600), Limit("writes", 10, 60, frozenset({WRITE}))],
        clock=clock,
        account="acct",
    )


@pytest.fixture
def pair() -> Iterator[tuple[Governor, Governor, FakeClock, WindowsClient]]:
    """The daemon's governor and the executor process's governor of the same account,
    the second sharing the first's windows over a socket pair."""
    clock = FakeClock()
    daemon, child = github(clock), github(clock)
    ours, theirs = socket_pair()
    server = threading.Thread(target=WindowsServer([daemon]).serve, args=(ours,), daemon=True)
    server.start()
    client = WindowsClient(theirs)
    share_with_daemon(client, [child])
    yield daemon, child, clock, client
    client.close()
    server.join(timeout=5)
    assert not server.is_alive()  # the server ends when the executor process's end closes
    ours.close()


def test_both_processes_requests_count_in_one_budget(
    pair: tuple[Governor, Governor, FakeClock, WindowsClient],
) -> None:
    daemon, child, _, _ = pair
    for _ in range(5):  # the executor process takes 5 of the 9 writes the margin allows
        with child.permit(WRITE):
            pass
    assert daemon.budget_left() == {"core": 4495, "writes": 4}
    assert child.budget_left() == daemon.budget_left()  # asked of the daemon
    for _ in range(4):  # the daemon's own requests take the rest
        with daemon.permit(WRITE):
            pass
    assert child.wait_needed(WRITE) == pytest.approx(60)
    assert child.wait_needed(READ) == 0  # reads are not held back by the write limit
    assert daemon.sent == 9  # the daemon's governor reports both processes' requests


def test_a_429_seen_by_either_process_pauses_both(
    pair: tuple[Governor, Governor, FakeClock, WindowsClient],
) -> None:
    daemon, child, clock, _ = pair
    child.observe(429, {"Retry-After": "30"})
    assert daemon.paused_for() == pytest.approx(30)
    assert daemon.wait_needed(READ) == pytest.approx(30)
    clock.advance(seconds=30)
    daemon.observe(429, {"Retry-After": "12"})
    assert child.paused_for() == pytest.approx(12)
    assert child.wait_needed(READ) == pytest.approx(12)


def test_an_answer_counts_from_when_it_came_in_in_the_daemons_windows(
    pair: tuple[Governor, Governor, FakeClock, WindowsClient],
) -> None:
    daemon, child, clock, _ = pair
    started = child.acquire(WRITE)
    clock.advance(seconds=59)  # a slow answer
    child.release(WRITE, started)  # told, not asked: the next question comes after it
    assert child.wait_needed(READ) == 0
    daemon_windows = daemon.windows
    assert daemon_windows.used(daemon.window(daemon.limits[1])[0], clock.now().timestamp()) == 1
    clock.advance(seconds=2)  # the start has left the window; the answer has not
    left = daemon.windows.take(daemon._applicable(WRITE), clock.now().timestamp())
    assert left == 0


def test_a_governor_the_daemon_does_not_have_fails_the_request_not_the_process() -> None:
    clock = FakeClock()
    ours, theirs = socket_pair()
    server = threading.Thread(target=WindowsServer([]).serve, args=(ours,), daemon=True)
    server.start()
    client = WindowsClient(theirs)
    child = github(clock)
    share_with_daemon(client, [child])
    with pytest.raises(BudgetUnreachable, match="github:acct"):
        child.acquire(WRITE)
    client.close()
    server.join(timeout=5)


def test_a_gone_daemon_is_a_transient_failure() -> None:
    clock = FakeClock()
    ours, theirs = socket_pair()
    ours.close()
    child = github(clock)
    share_with_daemon(WindowsClient(theirs), [child])
    with pytest.raises(BudgetUnreachable, match="gone"):
        child.acquire(WRITE)
