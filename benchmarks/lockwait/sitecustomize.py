"""Times the SQLite store's write lock in a syncd daemon, per thread (issue 17).

Not part of syncd: put this folder on PYTHONPATH and name an output file, and every Python
process started with that environment loads it (Python imports `sitecustomize` at start):

    SYNCD_LOCK_TIMES=/tmp/locks.json PYTHONPATH=benchmarks/lockwait \\
        python benchmarks/peer.py --n 5000 --rounds 1 --no-node-red --latency-samples 0
    python benchmarks/lockwait/show.py /tmp/locks.json

Every write transaction on SQLite holds `Store._write_lock` (syncd.store.db). This wraps
that lock: how long each thread waited for it and held it. Timing starts at the first
webhook stored (the inbox writer's first hold), so a daemon's start and first poll are left
out; each process that stored one writes its own file (OUTPUT.PID) at exit."""

from __future__ import annotations

import os

if os.environ.get("SYNCD_LOCK_TIMES"):
    import atexit
    import json
    import re
    import threading
    import time
    from typing import Any

    _out = f"{os.environ['SYNCD_LOCK_TIMES']}.{os.getpid()}"
    _times: dict[str, list[list[float]]] = {}  # thread group -> [[waited, held, ended at]]
    _started = threading.Event()
    _local = threading.local()

    def _group() -> str:  # "executor-3" -> "executor"; "inbox-writer" stays itself
        name = threading.current_thread().name
        return name if name == "inbox-writer" else re.split(r"[-_]", name)[0]

    class _TimedLock:
        def __init__(self, lock: Any) -> None:
            self._lock = lock

        def __enter__(self) -> None:
            asked = time.perf_counter()
            self._lock.acquire()
            _local.asked, _local.got = asked, time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            self._lock.release()
            done = time.perf_counter()
            group = _group()
            if group == "inbox-writer":
                _started.set()
            if _started.is_set():  # list.append is atomic under the GIL
                entry = [_local.got - _local.asked, done - _local.got, done]
                _times.setdefault(group, []).append(entry)

    def _wrap_store() -> None:
        from syncd.store import db

        original = db.Store.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if self._write_lock is not None:
                self._write_lock = _TimedLock(self._write_lock)

        db.Store.__init__ = __init__  # type: ignore[method-assign]

    def _dump() -> None:
        if _started.is_set():
            with open(_out, "w") as f:
                json.dump(_times, f)

    try:
        _wrap_store()
        atexit.register(_dump)
    except ImportError:  # a process without syncd (the fakes' helpers): nothing to time
        pass
