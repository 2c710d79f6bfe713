"""Executor throughput with 1, 2 and 3 replicas on one PostgreSQL database.

Plans N actions against the localdb connector with a fixed per-call latency (like a remote
API answering in 50 ms), starts K `syncd run` replicas, and times until every action is
done. Each replica runs `[executor] workers` threads; replicas claim with
FOR UPDATE SKIP LOCKED, so they never do the same work twice.

    python benchmarks/replicas.py --database postgresql://postgres@127.0.0.1:5432/test \
        [--n 600] [--latency 0.05] [--workers 4]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from syncd.mapping.rules import make_key  # noqa: E402
from syncd.store.db import ACTIONS_CHANNEL, open_store  # noqa: E402
from syncd.store.schema import actions  # noqa: E402
from tests.helpers import free_port, wait_healthy  # noqa: E402


def run(replicas: int, args: argparse.Namespace) -> float:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        args.database.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.database}?options=-csearch_path%3D{schema}"
    tmp = Path(tempfile.mkdtemp(prefix="syncd-replicas-"))
    (tmp / "mappings").mkdir()
    (tmp / "mappings" / "r.yaml").write_text(
        "rules:\n  - id: bench\n    when: {source: localdb, object: item, field: stage}\n"
        "    do:\n      - localdb.record: {title: x}\n"
    )
    store = open_store(url)
    procs, ports = [], []
    for k in range(replicas):
        config = tmp / f"r{k}.toml"
        ports.append(free_port())
        config.write_text(f"""
[syncd]
state_dir = "{tmp / f"s{k}"}"
mappings = ["{tmp / "mappings"}"]
log_level = "warning"
[store]
url = "{url}"
[http]
port = {ports[-1]}
[executor]
workers = {args.workers}
[localdb]
path = "{tmp / "remote.sqlite3"}"
latency_seconds = {args.latency}
poll_interval_seconds = 3600
""")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "syncd.cli", "run", "--config", str(config)], cwd=ROOT
            )
        )
    for port in ports:
        wait_healthy(port)
    # All replicas idle and listening: plan the work and NOTIFY, as ingest does.
    start = time.perf_counter()
    with store.tx() as conn:
        conn.execute(
            actions.insert(),
            [
                {
                    "key": make_key("bench", i),
                    "rule_id": "bench",
                    "connector": "localdb",
                    "action": "record",
                    "params": {"title": f"t{i}"},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": 0,
                    "created_at": 0,
                    "updated_at": 0,
                    "guarantee": "at_least_once",
                }
                for i in range(args.n)
            ],
        )
        store.notify(conn, ACTIONS_CHANNEL)
    try:
        while True:
            with store.engine.connect() as conn:
                done = conn.execute(select(func.count()).where(actions.c.status == "done")).scalar()
            if done >= args.n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(
        f"{args.n} actions, {args.latency * 1000:.0f} ms per remote call, "
        f"{args.workers} executor workers per replica (replicas started and idle first)"
    )
    for k in (1, 2, 3):
        elapsed = run(k, args)
        print(f"replicas: {k}   {elapsed:6.2f} s   {args.n / elapsed:7.1f} actions/s")


if __name__ == "__main__":
    main()
