"""The executor threads' wake-up (issue 17, idle latency): one action wakes one thread, not
all of them (the others would only claim nothing, competing with the one that has work)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from syncd.daemon import WakeOne


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _waiters(wake: WakeOne, count: int) -> tuple[list[bool], list[threading.Thread]]:
    woke: list[bool] = []
    threads = [
        threading.Thread(target=lambda: woke.append(wake.wait(10)), daemon=True)
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    _until(lambda: wake._waiting == count)
    return woke, threads


def test_set_lets_one_of_the_waiting_threads_go() -> None:
    wake = WakeOne()
    woke, threads = _waiters(wake, 4)

    wake.set()
    _until(lambda: len(woke) == 1)
    time.sleep(0.2)  # room for a wrongly woken second thread to show up
    assert woke == [True] and wake._waiting == 3

    wake.set()
    _until(lambda: len(woke) == 2)
    wake.set_all()  # stop: everyone goes
    for thread in threads:
        thread.join(5)
    assert woke == [True] * 4


def test_a_wake_while_nobody_waits_is_kept_for_the_next_wait_but_not_piled_up() -> None:
    wake = WakeOne()
    for _ in range(5):  # every thread busy: the wakes collapse into one, like an Event's
        wake.set()
    assert wake.wait(0) is True
    assert wake.wait(0) is False


def test_each_piece_of_handed_work_has_a_wake_of_its_own() -> None:
    wake = WakeOne()
    wake.hand(["a"])  # every thread busy: unlike plain wakes, these do not collapse
    wake.hand(["b"])
    assert wake.wait(0) is True and wake.take() == ["a"]
    assert wake.wait(0) is True and wake.take() == ["b"]
    assert wake.wait(0) is False and wake.take() is None


def test_idle_says_whether_a_thread_waits_with_no_wake_pending_for_it() -> None:
    wake = WakeOne()
    assert not wake.idle()
    woke, threads = _waiters(wake, 1)
    assert wake.idle()
    wake.set()
    threads[0].join(5)
    assert woke == [True] and not wake.idle()
