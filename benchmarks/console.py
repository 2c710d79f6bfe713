"""Console page loads with a large store: ms per page, over real HTTP.

A SQLite store (or --store-url) is filled with `--actions` actions (default 100,000), one
event each with its decision trace, one attempt each (but the pending ones), spread over
the last 7 days across 5 rules and 10,000 objects (97% done, 2% dead, 1% pending); the
console app is served by uvicorn on a free 127.0.0.1 port, and each page is loaded once,
then `--runs` times, with the Bearer token. Prints the first load, the median and the
slowest per page, and whether the medians stay under 200 ms. (The plot series are cached
for 30 s: their first load is the cold figure.)

    .venv/bin/python benchmarks/console.py [--actions 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syncd.clock import SystemClock, to_ms
from syncd.console.app import Console, build_console_app
from syncd.console.auth import Keys
from syncd.ingest import RulesHolder
from syncd.mapping.rules import RuleSet
from syncd.store.db import open_store
from syncd.store.schema import action_attempts, actions, event_traces, events, snapshots

RULES = [f"rule-{i}" for i in range(5)]
OBJECTS = 10_000
WEEK_MS = 7 * 86_400_000
TOKEN = "benchmark-console-token-0123456789"


def fill(store_url: str, count: int, now_ms: int) -> None:
    store = open_store(store_url)
    rnd = random.Random(7)
    with store.tx() as conn:
        conn.execute(
            snapshots.insert(),
            [
                {
                    "source": "localdb",
                    "object_type": "item",
                    "object_id": f"o{i}",
                    "version": 1,
                    "fields": {"name": f"Object {i}", "stage": "done"},
                    "context": {},
                    "entered": {},
                    "deleted": False,
                    "updated_at": now_ms,
                }
                for i in range(OBJECTS)
            ],
        )
    batch = 10_000
    for start in range(0, count, batch):
        ev, ac, tr, at_ = [], [], [], []
        for n in range(start, min(count, start + batch)):
            at = now_ms - WEEK_MS + n * WEEK_MS // count
            rule = RULES[n % len(RULES)]
            roll = rnd.random()
            status = "done" if roll < 0.97 else "dead" if roll < 0.99 else "pending"
            obj = f"o{n % OBJECTS}"
            ev.append(
                {
                    "id": n + 1,
                    "event_key": f"e{n}",
                    "source": "localdb",
                    "object_type": "item",
                    "object_id": obj,
                    "kind": "changed",
                    "field": "stage",
                    "old": "review",
                    "new": "done",
                    "version": n,
                    "created_at": at,
                }
            )
            ac.append(
                {
                    "id": n + 1,
                    "key": f"k{n}",
                    "rule_id": rule,
                    "connector": "localdb",
                    "action": "record",
                    "params": {"title": f"Done: Object {n}"},
                    "source": "localdb",
                    "object_type": "item",
                    "object_id": obj,
                    "event_id": n + 1,
                    "status": status,
                    "attempts": 1,
                    "next_attempt_at": at,
                    "created_at": at,
                    "updated_at": at + rnd.randint(200, 5000),
                    "last_error": "remote refused the call (400)" if status == "dead" else None,
                }
            )
            if status != "pending":
                at_.append(
                    {
                        "action_id": n + 1,
                        "attempt": 1,
                        "finished_at": ac[-1]["updated_at"],
                        "outcome": status,
                        "error": ac[-1]["last_error"],
                    }
                )
            tr.append(
                {
                    "event_id": n + 1,
                    "created_at": at,
                    "decisions": [
                        {
                            "rule": r,
                            "outcome": "fired" if r == rule else "condition false",
                            "reason": "fired" if r == rule else "condition failed: size gt 100",
                        }
                        for r in RULES
                    ],
                }
            )
        with store.tx() as conn:
            conn.execute(events.insert(), ev)
            conn.execute(actions.insert(), ac)
            conn.execute(event_traces.insert(), tr)
            conn.execute(action_attempts.insert(), at_)
    store.dispose()


def serve(store_url: str) -> tuple[uvicorn.Server, threading.Thread, str]:
    store = open_store(store_url)
    console = Console(store, RulesHolder(RuleSet([])), SystemClock(), ["localdb"], Keys(TOKEN))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            build_console_app(console), log_config=None, access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--store-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{Path(tmp) / 'syncd.sqlite3'}"
        now = to_ms(SystemClock().now())
        began = time.perf_counter()
        fill(url, args.actions, now)
        print(
            f"store: {url.split(':')[0]}, {args.actions:,} actions and events with traces, "
            f"{OBJECTS:,} objects (filled in {time.perf_counter() - began:.1f} s)"
        )
        server, thread, base = serve(url)
        mid = args.actions // 2
        pages = [
            "/",
            "/activity",
            "/activity?status=dead",
            "/activity?rule=rule-3",
            "/activity?object=Object%204242",
            "/activity?source=localdb&status=pending",
            f"/activity?before={mid}",
            "/actions",
            "/actions?status=dead&rule=rule-3",
            f"/actions?before={mid}",
            f"/events/{mid}",
            f"/actions/{mid}",
            "/plots",
            "/plots/data?range=24h",
            "/plots/data?range=7d",
        ]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        worst_median = 0.0
        print(f"{'page':<42} {'first ms':>9} {'median ms':>10} {'max ms':>8}  (runs: {args.runs})")
        for page in pages:
            t0 = time.perf_counter()
            assert session.get(base + page, timeout=30).status_code == 200, page
            first = (time.perf_counter() - t0) * 1000
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                response = session.get(base + page, timeout=30)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, page
            median = statistics.median(times)
            worst_median = max(worst_median, median)
            print(f"{page:<42} {first:>9.1f} {median:>10.1f} {max(times):>8.1f}")
        print(
            f"slowest median: {worst_median:.1f} ms "
            f"({'under' if worst_median < 200 else 'OVER'} 200 ms)"
        )
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
