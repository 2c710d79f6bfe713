"""Webhook intake benchmark: N signed deliveries at concurrency C against the real daemon.

Starts `syncd run` (SQLite in a temporary state directory, the localdb connector), sends N
distinct signed webhooks over C keep-alive connections, and prints deliveries/s and the
time to 2xx (p50, p99, max). Every 2xx means the delivery was committed to the database
first; the script checks that the inbox holds exactly N rows at the end.

    python benchmarks/webhooks.py [--n 20000] [--c 32] [--intake-only]

`--intake-only` measures durable intake alone: the daemon runs with `[inbox] workers = 0`
(a receive-only replica), so it stores and answers but processes nothing meanwhile.

The client is a minimal asyncio HTTP/1.1 client with pre-built requests, so that it costs
the server's two cores as little as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncd_sandbox.localdb.connector import sign  # noqa: E402

SECRET = "whsec_benchmark_secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_requests(n: int, port: int) -> list[bytes]:
    out = []
    for i in range(n):
        body = json.dumps({"type": "item", "id": f"obj{i % 500}"}).encode()
        head = (
            f"POST /webhooks/localdb HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Localdb-Delivery: bench-{i}\r\nX-Localdb-Signature: {sign(SECRET, body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def client(
    port: int, queue: list[bytes], latencies: list[float], statuses: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while queue:
        request = queue.pop()
        start = time.perf_counter()
        writer.write(request)
        statuses.append(await read_response(reader))
        latencies.append(time.perf_counter() - start)
    writer.close()


async def blast(
    port: int, requests: list[bytes], concurrency: int
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    queue = list(reversed(requests))
    start = time.perf_counter()
    await asyncio.gather(*(client(port, queue, latencies, statuses) for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, statuses


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU (user + system) of each thread of process `pid`, by thread id (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_report(pid: int, before: dict[int, float], after: dict[int, float], n: int) -> str:
    """The daemon's CPU per delivery over the measured run: the whole process, its main
    thread (the event loop: uvicorn and the webhook handlers) and its busiest other thread
    (under --intake-only, the inbox writer)."""
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    total = sum(used.values())
    loop = used.get(pid, 0.0)
    other = max((v for tid, v in used.items() if tid != pid), default=0.0)
    return (
        f"daemon cpu: {total * 1000 / n:.3f} ms/delivery "
        f"(event loop thread {loop * 1000 / n:.3f}, busiest other thread {other * 1000 / n:.3f})"
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("daemon exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("daemon did not start")


def write_localdb_daemon(
    tmp: Path, port: int, *, title: str, extra: str = "", secret: str = SECRET
) -> Path:
    """`tmp/syncd.toml` for a daemon on `port` with the localdb connector (its remote in
    `tmp/remote.sqlite3`) and one rule: an item whose stage is "done" gets a record titled
    `title`. The console gets a free port of its own (the default may be taken). `extra`:
    more TOML tables."""
    (tmp / "mappings").mkdir(exist_ok=True)
    (tmp / "mappings" / "rules.yaml").write_text(
        "rules:\n  - id: bench\n"
        "    when: {source: localdb, object: item, field: stage, to: done}\n"
        f"    do:\n      - localdb.record: {{title: '{title}'}}\n"
    )
    config = tmp / "syncd.toml"
    config.write_text(f"""
[syncd]
state_dir = "{tmp / "state"}"
mappings = ["{tmp / "mappings"}"]
log_level = "warning"
[http]
port = {port}
[console]
listen = "127.0.0.1:{free_port()}"
{extra}[localdb]
path = "{tmp / "remote.sqlite3"}"
webhook_secret = "{secret}"
poll_interval_seconds = 3600
""")
    return config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--c", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument(
        "--synchronous",
        choices=["NORMAL", "FULL"],
        default="NORMAL",
        help="SQLite durability: NORMAL survives a crash of syncd, FULL also a power loss",
    )
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="durable intake alone: the daemon stores deliveries and does not process them "
        "([inbox] workers = 0, a receive-only replica)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    port = free_port()
    write_localdb_daemon(
        tmp,
        port,
        title="x",
        extra=f"""[store]
synchronous = "{args.synchronous}"
[inbox]
workers = {0 if args.intake_only else 1}
""",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd.cli", "run", "--config", str(tmp / "syncd.toml")],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_ready(port, proc)
        warm = build_requests(args.warmup, port)
        asyncio.run(blast(port, [r.replace(b"bench-", b"warm-") for r in warm], args.c))
        requests = build_requests(args.n, port)
        cpu_before = thread_cpu_seconds(proc.pid)
        elapsed, latencies, statuses = asyncio.run(blast(port, requests, args.c))
        cpu_after = thread_cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    ok = sum(1 for s in statuses if s in (200, 202))
    db = sqlite3.connect(tmp / "state" / "syncd.sqlite3")
    stored = db.execute("SELECT count(*) FROM inbox WHERE delivery_id LIKE 'bench-%'").fetchone()[0]
    lat = sorted(latencies)
    print(
        f"deliveries: {args.n} at concurrency {args.c} "
        f"(SQLite, WAL, synchronous={args.synchronous})"
        + (", intake only (nothing processed)" if args.intake_only else ", processed meanwhile")
    )
    print(f"accepted (2xx): {ok}   stored in the inbox: {stored}")
    print(f"throughput: {args.n / elapsed:,.0f} deliveries/s over {elapsed:.2f} s")
    print(
        f"time to 2xx: p50 {statistics.median(lat) * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )
    print(cpu_report(proc.pid, cpu_before, cpu_after, args.n))
    if ok != args.n or stored != args.n:
        raise SystemExit("FAILED: not every delivery was accepted and stored")


if __name__ == "__main__":
    main()
