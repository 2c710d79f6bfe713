"""Waking the threads that wait for the same work, one per piece of work."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class WakeOne:
    """A wake-up for threads that wait for the same work: `set` lets one waiting thread go
    (or the next one to wait, when none waits now); `set_all` lets them all go (stop).
    Used like an Event by Daemon._loop: `wait(timeout)`, then `clear()` (nothing to do)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0  # wakes not taken yet
        self._waiting = 0
        self._all = False
        self._handed: deque[Any] = deque()  # work handed over, for the next thread to take

    def idle(self) -> bool:
        """A thread waits with no wake pending for it (a hint: it may time out meanwhile)."""
        return self._waiting > self._pending

    def hand(self, work: Any) -> None:
        """Wake one thread, with `work` for the first thread to `take` it; each piece of
        work has a wake of its own, so none is left waiting for a poll tick."""
        with self._cond:
            self._handed.append(work)
            self._pending += 1
            self._cond.notify()

    def take(self) -> Any | None:
        with self._cond:
            return self._handed.popleft() if self._handed else None

    def set(self) -> None:
        with self._cond:
            # One pending wake per waiting thread at most: wakes while every thread is
            # busy collapse into one, as an Event's would.
            self._pending = min(self._pending + 1, max(1, self._waiting))
            self._cond.notify()

    def set_all(self) -> None:
        with self._cond:
            self._all = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._pending > 0 or self._all, timeout)
            finally:
                self._waiting -= 1
            if self._pending > 0:
                self._pending -= 1
                return True
            return self._all

    def clear(self) -> None:
        """Nothing to clear: `wait` took its wake."""
