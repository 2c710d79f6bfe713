"""Drain rate of a backlog against the API's limit, in real time (issue #16).

Plans N actions in a fresh SQLite store and drains them with syncd's executor on
`--workers` threads (as `syncd run` does), through the real client library over real HTTP
to the fake, on the system clock. The fake enforces the limit and counts every request
over it and every request sent before a Retry-After it gave. Printed per API: the limit,
syncd's target (the margin's share), the measured drain rate (requests per window of the
limit, over the whole windows from the first request, stamped on arrival at the fake), the
most requests that arrived within any one window of the limit, and the fake's counts.

- Airtable: `update` of N records, against the documented 5 requests/s per base.
- GitHub: `create_issue` N times, against the secondary limit of 80 content-creating
  requests per minute, with the minute scaled by `--github-scale` (default 10: 80 per 6 s)
  in the fake and in syncd together (the same shape on a shorter period), so a run takes
  seconds, not hours; the hourly secondary (500/h) and primary limits are lifted in both.

    python benchmarks/backlog.py [--n 300] [--workers 4] [--margin 0.9] [--github-scale 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from connectors.airtable import AirtableConnector, AirtableSettings  # noqa: E402
from connectors.github import GitHubConnector, GitHubSettings  # noqa: E402
from syncd.clock import SystemClock, to_ms  # noqa: E402
from syncd.connector import Connector  # noqa: E402
from syncd.executor import Executor  # noqa: E402
from syncd.ingest import insert_actions  # noqa: E402
from syncd.logs import configure_logging  # noqa: E402
from syncd.mapping.rules import PlannedAction  # noqa: E402
from syncd.store.db import open_store  # noqa: E402
from syncd.store.schema import actions  # noqa: E402
from syncd_sandbox.airtable.fake import FakeAirtable  # noqa: E402
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse, FakeServer  # noqa: E402
from syncd_sandbox.github.fake import FakeGitHub  # noqa: E402

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def stamp_arrivals(app: FakeApp, methods: frozenset[str] | None = None) -> list[float]:
    """Monotonic arrival times of the requests the fake receives (before its own limits)."""
    stamps: list[float] = []

    def stamp(request: FakeRequest) -> FakeResponse | None:
        if methods is None or request.method in methods:
            stamps.append(time.monotonic())
        return None

    app.before.insert(0, stamp)
    return stamps


def drain(
    connector: Connector, action: str, params: Callable[[int], dict[str, Any]], n: int, workers: int
) -> None:
    """Plan `n` actions and run the executor on `workers` threads until all are done."""
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'syncd.db'}")
        executor = Executor(store, {connector.name: connector}, clock, lookup_window_seconds=0)
        planned = [
            PlannedAction(
                key=f"bench-{i}",
                rule_id="bench",
                connector=connector.name,
                action=action,
                params=params(i),
                ref=None,
                guarantee="at_least_once",
            )
            for i in range(n)
        ]
        with store.tx() as conn:
            insert_actions(store, conn, planned, to_ms(clock.now()))
        done = threading.Event()

        def work() -> None:
            while not done.is_set():
                if not executor.run_due(10):  # idle: as the daemon's executor loop waits
                    time.sleep(executor.idle_seconds(1.0))

        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60 + n  # bounded: far above any expected drain
        try:
            while time.monotonic() < deadline:
                with store.engine.connect() as conn:
                    left = conn.execute(
                        select(func.count()).where(actions.c.status.in_(("pending", "in_flight")))
                    ).scalar()
                if not left:
                    break
                time.sleep(0.2)
            else:
                raise SystemExit(f"{connector.name}: backlog not drained in time")
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=30)
            with store.engine.connect() as conn:
                statuses = dict(
                    conn.execute(
                        select(actions.c.status, func.count()).group_by(actions.c.status)
                    ).all()
                )
            store.dispose()
        if statuses != {"done": n}:
            raise SystemExit(f"{connector.name}: not all done: {statuses}")


def most_in_window(stamps: list[float], seconds: float) -> int:
    most, first = 0, 0
    for last in range(len(stamps)):
        while stamps[first] <= stamps[last] - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def rate_per_window(stamps: list[float], per: float) -> tuple[float, int]:
    """Requests per window of the limit, over the whole windows from the first request
    (the bursts of a windowed budget make "N / elapsed" depend on where N ends); and how
    many whole windows that was."""
    windows = int((stamps[-1] - stamps[0]) // per)
    if windows == 0:
        raise SystemExit("the backlog drained within one window: raise --n")
    end = stamps[0] + windows * per
    return sum(1 for s in stamps if s < end) / windows, windows


def report(
    name: str, stamps: list[float], limit: int, per: float, margin: float, counts: dict[str, int]
) -> bool:
    stamps = sorted(stamps)
    rate, windows = rate_per_window(stamps, per)
    most = most_in_window(stamps, per)
    print(
        f"{name}: {len(stamps)} requests in {stamps[-1] - stamps[0]:.1f} s; "
        f"drain rate {rate:.2f} per {per:g} s (over {windows} windows) against a limit of "
        f"{limit} ({rate / limit:.1%}; target {margin:.0%}); most in any {per:g} s "
        f"window: {most}; fake's counts: {counts}",
        flush=True,
    )
    return most <= limit and not any(counts.values())


def airtable(args: argparse.Namespace) -> bool:
    clock = SystemClock()
    fake = FakeAirtable(token="patBench.not-real", base_id="appBench0000001", clock=clock)
    fake.create_table("Leads", {"Name": "singleLineText", "Status": "singleSelect"})
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(args.n)]
    with FakeServer(fake.app) as server:
        connector = AirtableConnector(
            AirtableSettings(
                token=SecretStr("patBench.not-real"),
                base_id="appBench0000001",
                tables={"lead": "Leads"},
                base_url=server.url,
                timeout_seconds=10,
                rate_margin=args.margin,
            ),
            clock=clock,
        )
        stamps = stamp_arrivals(fake.app)
        try:
            drain(
                connector,
                "update",
                lambda i: {
                    "table": "lead",
                    "record_id": ids[i],
                    "fields": {"Status": "Contacted"},
                    "typecast": True,
                },
                args.n,
                args.workers,
            )
        finally:
            connector.close()
    return report(
        "Airtable (5 requests per 1 s per base)",
        stamps,
        5,
        1.0,
        args.margin,
        {"over the limit or locked out": fake.over_limit_requests},
    )


def github(args: argparse.Namespace) -> bool:
    clock = SystemClock()
    period = 60.0 / args.github_scale
    fake = FakeGitHub(
        clock=clock,
        token="ghp_bench-not-real",
        login="syncd-bot",
        write_limit=80,
        write_period=period,
    )
    fake.writes_per_hour = 10**9  # lifted: only the (scaled) minute limit is measured
    fake.primary_limit = 10**9
    fake.add_repo("acme/bench")
    with fake:
        connector = GitHubConnector(
            GitHubSettings(
                token="ghp_bench-not-real",
                base_url=fake.base_url,
                repositories=["acme/bench"],
                webhook_secret="bench",
                timeout_seconds=10,
                rate_margin=args.margin,
                write_limit=80,
                write_period_seconds=period,
                writes_per_hour=10**9,
                requests_per_hour=10**9,
            ),
            clock=clock,
        )
        stamps = stamp_arrivals(fake.app, WRITES)
        try:
            drain(
                connector,
                "create_issue",
                lambda i: {"repo": "acme/bench", "title": f"bench {i}"},
                args.n,
                args.workers,
            )
        finally:
            connector.close()
    return report(
        f"GitHub (80 writes per {period:g} s: the minute scaled by {args.github_scale:g})",
        stamps,
        80,
        period,
        args.margin,
        {
            "secondary": fake.secondary_limited,
            "primary": fake.primary_limited,
            "before Retry-After": fake.early_requests,
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="actions per API")
    parser.add_argument("--workers", type=int, default=4, help="executor threads")
    parser.add_argument("--margin", type=float, default=0.9, help="syncd's rate_margin")
    parser.add_argument(
        "--github-scale",
        type=float,
        default=10.0,
        help="GitHub's minute divided by this, in the fake and in syncd",
    )
    parser.add_argument("--only", choices=["airtable", "github"])
    args = parser.parse_args()
    configure_logging("WARNING")
    print(
        f"backlog of {args.n} actions per API, {args.workers} executor threads, "
        f"margin {args.margin:.0%}",
        flush=True,
    )
    ok = True
    if args.only in (None, "github"):
        ok = github(args) and ok
    if args.only in (None, "airtable"):
        ok = airtable(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
