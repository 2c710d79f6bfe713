"""Memory growth of a busy daemon (issue 17: <= 5 MB over 100,000 webhooks).

Starts a real `syncd run` (SQLite in a temporary state directory, the localdb connector,
one rule), then sends signed webhooks, each about an object of its own whose stage is
"done" at the remote: every delivery is stored, fetched, matched by the rule, and plans a
`localdb.record` action that the executor performs. So the inbox, ingest, the rules, the
planner and the executor are all in the measurement, over as many distinct objects, delivery
ids and action keys as webhooks.

The RSS (VmRSS) is read once the warm-up deliveries (`--warmup`) have all been processed
and their actions done, and again when all `--n` deliveries have been (the queue drained
both times: no backlog in either reading). Printed: both readings, the growth, and the
growth per 100,000 webhooks. The daemon runs with the environment of the shipped unit (the
`Environment=` lines of systemd/syncd.service, such as MALLOC_ARENA_MAX), unless
`--no-unit-env`.

A reading is also printed every `--every` webhooks between the two.

    python benchmarks/growth.py [--n 100000] [--warmup 10000] [--every 10000] [--c 8]
                                [--no-unit-env]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from idle_rss import unit_environment  # noqa: E402
from webhooks import blast, free_port, wait_ready, write_localdb_daemon  # noqa: E402

from syncd_sandbox.localdb.connector import sign  # noqa: E402
from syncd_sandbox.localdb.remote import LocalDbRemote  # noqa: E402

SECRET = "whsec_growth_benchmark"
CHUNK = 5000  # objects written to the remote, then their webhooks sent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def add_objects(remote_path: Path, first: int, count: int) -> None:
    """Objects first..first+count-1 at stage "done", written as `LocalDbRemote.put` does
    (a version above every earlier one, the history of the field), in one transaction."""
    db = sqlite3.connect(remote_path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        base = max(int(time.time() * 1000), db.execute("SELECT n FROM seq").fetchone()[0] + 1)
        rows = []
        for i in range(first, first + count):
            version = base + i - first
            fields = {"stage": "done", "name": f"Object {i}"}
            history = {"stage": [[version, "done"]], "name": [[version, fields["name"]]]}
            rows.append(("item", f"obj{i}", json.dumps(fields), version, json.dumps(history)))
        db.executemany(
            "INSERT INTO objects (type, id, fields, version, history) VALUES (?,?,?,?,?)", rows
        )
        db.execute("UPDATE seq SET n = ?", (base + count,))
        db.execute("COMMIT")
    finally:
        db.close()


def build_requests(first: int, count: int, port: int) -> list[bytes]:
    out = []
    for i in range(first, first + count):
        body = json.dumps({"type": "item", "id": f"obj{i}"}).encode()
        head = (
            f"POST /webhooks/localdb HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Localdb-Delivery: growth-{i}\r\nX-Localdb-Signature: {sign(SECRET, body)}\r\n"
            "\r\n"
        ).encode()
        out.append(head + body)
    return out


def send(port: int, remote_path: Path, first: int, count: int, concurrency: int) -> None:
    for start in range(first, first + count, CHUNK):
        size = min(CHUNK, first + count - start)
        add_objects(remote_path, start, size)
        _, _, statuses = asyncio.run(blast(port, build_requests(start, size, port), concurrency))
        bad = [s for s in statuses if s not in (200, 202)]
        if bad:
            raise SystemExit(f"FAILED: {len(bad)} deliveries answered {sorted(set(bad))}")


def drained(store_path: Path, remote_path: Path, expected: int) -> bool:
    """Every delivery processed, every action done, and the remote holds `expected`
    effects (read-only connections: the daemon keeps writing)."""
    store = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)
    remote = sqlite3.connect(f"file:{remote_path}?mode=ro", uri=True, timeout=30)
    try:
        waiting = store.execute("SELECT count(*) FROM inbox WHERE status = 'pending'").fetchone()
        active = store.execute(
            "SELECT count(*) FROM actions WHERE status IN ('pending', 'in_flight')"
        ).fetchone()
        effects = remote.execute("SELECT count(*) FROM effects").fetchone()
    finally:
        store.close()
        remote.close()
    return waiting[0] == 0 and active[0] == 0 and effects[0] >= expected


def wait_drained(
    proc: subprocess.Popen[bytes], store_path: Path, remote_path: Path, expected: int
) -> float:
    started = time.monotonic()
    while not drained(store_path, remote_path, expected):
        if proc.poll() is not None:
            raise SystemExit("FAILED: the daemon exited")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="webhooks in all")
    parser.add_argument("--warmup", type=int, default=10_000, help="webhooks before reading 1")
    parser.add_argument("--c", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--every", type=int, default=10_000, help="webhooks between readings after the warm-up"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before a reading")
    parser.add_argument(
        "--no-unit-env", action="store_true", help="without the unit's Environment= settings"
    )
    args = parser.parse_args()
    unit_env = {} if args.no_unit_env else unit_environment()
    tmp = Path(tempfile.mkdtemp(prefix="syncd-growth-"))
    remote_path = tmp / "remote.sqlite3"
    LocalDbRemote(remote_path)  # the schema, before the daemon's first poll
    port = free_port()
    write_localdb_daemon(tmp, port, title="Done: {{ item.name }}", secret=SECRET)
    store_path = tmp / "state" / "syncd.sqlite3"
    env = {**os.environ, **unit_env, "PYTHONUNBUFFERED": "1"}
    print(
        f"growth: {args.n:,} webhooks (warm-up {args.warmup:,}) at concurrency {args.c}, "
        f"each planning and performing one action; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; environment of the unit: "
        f"{' '.join(f'{k}={v}' for k, v in unit_env.items()) or 'none'}",
        flush=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd.cli", "run", "--config", str(tmp / "syncd.toml")],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_ready(port, proc)
        time.sleep(args.settle)  # the first poll (nothing yet at the remote)
        started = time.monotonic()
        send(port, remote_path, 0, args.warmup, args.c)
        wait_drained(proc, store_path, remote_path, args.warmup)
        time.sleep(args.settle)
        before = rss_mb(proc.pid)
        print(
            f"  after {args.warmup:>7,} webhooks (drained): RSS {before:6.1f} MB "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        sent = args.warmup
        while sent < args.n:  # a reading at each step: a plateau shows apart from a slope
            step = min(args.every, args.n - sent)
            send(port, remote_path, sent, step, args.c)
            sent += step
            wait_drained(proc, store_path, remote_path, sent)
            time.sleep(args.settle)
            after = rss_mb(proc.pid)
            if sent < args.n:
                print(f"  after {sent:>7,} webhooks (drained): RSS {after:6.1f} MB", flush=True)
        elapsed = time.monotonic() - started
        print(
            f"  after {args.n:>7,} webhooks (drained): RSS {after:6.1f} MB ({elapsed:.0f} s, "
            f"{args.n / elapsed:.0f} webhooks/s end to end)",
            flush=True,
        )
        grown = after - before
        per_100k = grown / (args.n - args.warmup) * 100_000
        print(
            f"  growth: {grown:+.1f} MB over {args.n - args.warmup:,} webhooks = "
            f"{per_100k:+.1f} MB per 100,000; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
