"""SQLite's one writer at a time, queued across the threads of several processes.

Within one process the store queues its writers on a `threading.Lock`: a thread that finds
SQLite's write lock taken would otherwise sleep in SQLite's busy handler (1, 2, 5 ... 100 ms
steps) instead of starting the moment the last writer commits. When a second process
writes to the same file (the executor process, `[executor] separate_process`), the threads
of both queue on an exclusive `flock` of a side file as well: the kernel hands it to the
next waiter as soon as it is let go, and releases it when a holder dies (kill -9 included),
so a dead process never leaves the other waiting.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType


class ProcessWriteLock:
    """A context manager: this process's lock, then the file lock shared with the others.

    The thread lock comes first: `flock` locks belong to an open file, which every thread
    of a process shares, so it would not keep two threads of one process apart."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> ProcessWriteLock:
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # lets go of the GIL while it waits
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        os.close(self._fd)


def write_lock_path(database: str) -> str:
    """The side file of the SQLite database at `database` whose lock the writers share."""
    return database + ".write-lock"
