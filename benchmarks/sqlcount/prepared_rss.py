"""RSS of one process after batch inserts of every size from 1 to 129 rows, twice over
(issue 17): a driver keeps each statement text it ran prepared (sqlite3: the last 128 per
connection), and a multi-row INSERT's text depends on its row count.

    python benchmarks/sqlcount/prepared_rss.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from syncd.store import events
from syncd.store.db import open_store


def rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/store.sqlite3")
    before, key = rss_mb(), 0
    for size in list(range(1, 130)) * 2:
        rows = []
        for n in range(size):
            key += 1
            rows.append(
                {
                    "event_key": f"k{key}",
                    "source": "s",
                    "object_type": "t",
                    "object_id": str(n),
                    "kind": "changed",
                    "field": "f",
                    "old": None,
                    "new": {"n": n},
                    "version": n,
                    "created_at": 1,
                }
            )
        with store.tx() as conn:
            events.add_events(store, conn, rows)
    print(f"RSS {before:.1f} -> {rss_mb():.1f} MB after batches of 1 to 129 events, twice")


if __name__ == "__main__":
    main()
