"""CPU, store transactions and lock waits per action of the executor path alone (issue 17).

What `syncd run` does after the inbox has planned GitHub creates, without the webhook intake
and the HubSpot fetch: a fresh SQLite store, the real executor (`Executor`) on `--workers`
threads running the daemon's executor loop (`Daemon._executor_body`, `WakeOne`), the real
GitHub connector (PyGithub over HTTP) against the fake GitHub in its own process (limits
lifted), and a feeder thread standing in for the inbox thread: every round it plans
`--batch` actions in one transaction, hands an idle executor thread what it could claim in
that transaction (`ExecutorHandoff`), and wakes one otherwise, as `InboxProcessor._commit`
and `Daemon._inbox_body` do. `--rate` paces the rounds (actions/s; 0: all planned at once,
a backlog to drain).

Printed: actions/s, the executor threads' CPU per action (their `time.thread_time`), the
process's CPU per action, the write transactions per action opened by executor threads
(claims, finishes) and by the feeder, the time executor threads waited for the store's write
lock per action, and whether each issue was created exactly once.

    python benchmarks/executor_path.py [--n 3000] [--workers 8] [--rate 400] [--batch 20]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks.github_create import NO_LIMIT, TOKEN, _fake_main  # noqa: E402
from connectors.github import GitHubConnector, GitHubSettings  # noqa: E402
from syncd.clock import SystemClock, to_ms  # noqa: E402
from syncd.daemon import EXECUTOR_CLAIM, Daemon, ExecutorHandoff, WakeOne  # noqa: E402
from syncd.executor import Executor  # noqa: E402
from syncd.ingest import insert_actions  # noqa: E402
from syncd.logs import configure_logging  # noqa: E402
from syncd.mapping.rules import PlannedAction  # noqa: E402
from syncd.store.db import Store, open_store  # noqa: E402
from syncd.store.schema import actions  # noqa: E402

REPO = "bench/executor"


class Counts:
    """Write transactions and the time spent waiting for the store's write lock, by who."""

    def __init__(self, store: Store) -> None:
        self.tx: Counter[str] = Counter()
        self.lock_wait: Counter[str] = Counter()
        self._guard = threading.Lock()
        self._wrap(store)

    def _wrap(self, store: Store) -> None:
        tx = store.tx
        lock = store._write_lock
        assert lock is not None  # SQLite
        counts = self

        class TimedLock:
            """The write lock, timing each wait for it."""

            def __enter__(self) -> None:
                started = time.perf_counter()
                lock.acquire()
                counts.add(counts.lock_wait, time.perf_counter() - started)

            def __exit__(self, *exc: object) -> None:
                lock.release()

        @contextlib.contextmanager
        def counted() -> Iterator[Any]:
            counts.add(counts.tx, 1)
            with tx() as conn:
                yield conn

        store._write_lock = TimedLock()  # type: ignore[assignment]
        store.tx = counted  # type: ignore[method-assign]

    def add(self, counter: Counter[str], amount: float) -> None:
        who = "executor" if threading.current_thread().name.startswith("executor") else "feeder"
        with self._guard:
            counter[who] += amount  # type: ignore[assignment]


def planned(first: int, count: int) -> list[PlannedAction]:
    return [
        PlannedAction(
            key=f"bench-{i}",
            rule_id="bench",
            connector="github",
            action="create_issue",
            params={"repo": REPO, "title": f"Deal won: {i}", "body": f"HubSpot deal {i} won."},
            ref=None,
            guarantee="at_least_once",
        )
        for i in range(first, first + count)
    ]


def run(args: argparse.Namespace) -> bool:
    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.get_context("spawn").Process(target=_fake_main, args=(theirs, REPO))
    fake.start()
    base_url = ours.recv()
    clock = SystemClock()
    connector = GitHubConnector(
        GitHubSettings(
            token=SecretStr(TOKEN),
            base_url=base_url,
            requests_per_hour=NO_LIMIT,
            write_limit=NO_LIMIT,
            writes_per_hour=NO_LIMIT,
        ),
        clock=clock,
    )
    folder = tempfile.TemporaryDirectory()
    store = open_store(f"sqlite:///{Path(folder.name) / 'syncd.db'}")
    executor = Executor(store, {"github": connector}, clock, lookup_window_seconds=0)
    wake = WakeOne()
    executor.on_full_claim = wake.set
    handoff = ExecutorHandoff(executor, wake, EXECUTOR_CLAIM)
    stop = threading.Event()
    # The daemon's executor loop (Daemon._loop around Daemon._executor_body), on these parts.
    shim: Any = SimpleNamespace(wake_executor=wake, engine=SimpleNamespace(executor=executor))
    shim.stop = stop
    cpu: list[float] = []

    def executor_loop() -> None:
        started = time.thread_time()
        while not stop.is_set():
            Daemon._executor_body(shim)
            wake.wait(executor.idle_seconds(1.0))
            wake.clear()
        cpu.append(time.thread_time() - started)

    def feed(first: int, count: int) -> None:
        """One inbox round: plan, claim for an idle thread in the same transaction, hand."""
        handoff.begin_round()
        claimed: list[Any] = []
        with store.tx() as conn:
            insert_actions(store, conn, planned(first, count), to_ms(clock.now()))
            claimed = handoff.claim(conn)
        if claimed:
            handoff.give(claimed)
        if handoff.needs_wake():
            wake.set()

    # Warm up: connections open, statements built, code paths hot (not measured).
    threads = [
        threading.Thread(target=executor_loop, name=f"executor-{i}", daemon=True)
        for i in range(args.workers)
    ]
    for thread in threads:
        thread.start()
    feed(-args.workers * EXECUTOR_CLAIM, args.workers * EXECUTOR_CLAIM)
    wait_done(store, args.workers * EXECUTOR_CLAIM, 60)

    counts = Counts(store)
    cpu_start, wall_start = time.process_time(), time.monotonic()
    if args.rate <= 0:
        feed(0, args.n)
    else:
        every = args.batch / args.rate
        for first in range(0, args.n, args.batch):
            due = wall_start + (first // args.batch) * every
            time.sleep(max(0.0, due - time.monotonic()))
            feed(first, min(args.batch, args.n - first))
    wait_done(store, args.workers * EXECUTOR_CLAIM + args.n, 60 + args.n / 10)
    wall, process_cpu = time.monotonic() - wall_start, time.process_time() - cpu_start
    stop.set()
    wake.set_all()
    for thread in threads:
        thread.join(timeout=30)
    with store.engine.connect() as conn:
        statuses = dict(
            conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all()
        )
    ours.send("stop")
    titles = [t for t in ours.recv() if not t.startswith("Deal won: -")]
    fake.join()
    connector.close()
    store.dispose()
    folder.cleanup()
    n = args.n
    # The executor threads' CPU includes the warm-up's: small against n, but subtracted by
    # no one; the process's CPU is of the measured phase only.
    print(
        f"executor path: n={n} workers={args.workers} rate={args.rate or 'backlog'} "
        f"batch={args.batch}  {n / wall:.0f} actions/s  executor cpu="
        f"{sum(cpu) * 1000 / n:.3f} ms/action  process cpu={process_cpu * 1000 / n:.3f} "
        f"ms/action  write tx/action: executor {counts.tx['executor'] / n:.3f} feeder "
        f"{counts.tx['feeder'] / n:.3f}  write-lock wait/action: executor "
        f"{counts.lock_wait['executor'] * 1000 / n:.3f} ms feeder "
        f"{counts.lock_wait['feeder'] * 1000 / n:.3f} ms  created={len(titles)} "
        f"distinct={len(set(titles))}  load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return len(titles) == len(set(titles)) == n and statuses == {"done": n + len(threads) * 10}


def wait_done(store: Store, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            done = conn.execute(select(func.count()).where(actions.c.status == "done")).scalar_one()
        if done >= total:
            return
        time.sleep(0.05)
    raise SystemExit(f"not all done within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="actions measured")
    parser.add_argument("--workers", type=int, default=8, help="executor threads (syncd's 8)")
    parser.add_argument(
        "--rate", type=float, default=400, help="actions planned per second (0: all at once)"
    )
    parser.add_argument("--batch", type=int, default=20, help="actions planned per round")
    args = parser.parse_args()
    configure_logging("WARNING")  # as benchmarks/peer.py runs the daemon
    sys.setswitchinterval(0.001)  # as syncd.daemon.run_daemon
    return 0 if run(args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
