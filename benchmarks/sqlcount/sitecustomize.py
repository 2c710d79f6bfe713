"""Counts the SQL statements and transactions of a syncd daemon, per thread (issue 17).

Not part of syncd: put this folder on PYTHONPATH and name an output file, and every Python
process started with that environment loads it (Python imports `sitecustomize` at start):

    SYNCD_COUNT_SQL=/tmp/sql.json PYTHONPATH=benchmarks/sqlcount \\
        python benchmarks/peer.py --n 3000 --rounds 1 --no-node-red
    python benchmarks/sqlcount/show.py /tmp/sql.json 3050

Counting starts at the first INSERT into the inbox (a webhook), so a daemon's start and
first poll are left out; only a process that stored a webhook writes the file (every
second, and at exit). BEGIN is counted from SQLAlchemy's "begin" event, as syncd may send
it to the driver directly."""

from __future__ import annotations

import os

if os.environ.get("SYNCD_COUNT_SQL"):
    import atexit
    import collections
    import json
    import re
    import threading
    import time
    from typing import Any

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _out = os.environ["SYNCD_COUNT_SQL"]
    _counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    _lock = threading.Lock()
    _started = threading.Event()

    def _thread() -> str:  # "inbox-writer", "inbox_3" ... -> "inbox"
        return re.split(r"[-_]", threading.current_thread().name)[0]

    def _shape(sql: str) -> str:
        text = " ".join(sql.split())
        text = re.sub(r"\(__\[POSTCOMPILE_\w+\]\)", "(...)", text)
        text = re.sub(r"\((\?, )+\?\)", "(?*)", text)
        text = re.sub(r"(\(\?\*\), )+\(\?\*\)", "(?*)...", text)
        return text[:160]

    def _add(kind: str, sql: str) -> None:
        with _lock:
            _counts[(_thread(), kind, sql)] += 1

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(
        _conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, many: bool
    ) -> None:
        if not _started.is_set():
            if not sql.lstrip().upper().startswith("INSERT INTO INBOX"):
                return
            _started.set()
        if sql.startswith("BEGIN"):
            return  # counted by the "begin" event
        _add("many" if many else "one", _shape(sql))

    @event.listens_for(Engine, "begin")
    def _begin(_conn: Any) -> None:
        if _started.is_set():
            _add("tx", "BEGIN")

    @event.listens_for(Engine, "commit")
    def _commit(_conn: Any) -> None:
        if _started.is_set():
            _add("tx", "COMMIT")

    def _dump() -> None:
        if not _started.is_set():
            return
        with _lock:
            rows = [[*key, n] for key, n in _counts.items()]
        with open(_out, "w") as f:
            json.dump(rows, f)

    def _every_second() -> None:
        while True:
            time.sleep(1)
            _dump()

    threading.Thread(target=_every_second, name="sqlcount", daemon=True).start()
    atexit.register(_dump)
