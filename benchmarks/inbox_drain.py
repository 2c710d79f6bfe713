"""Drain rate of the inbox alone: stored HubSpot webhooks turned into events and actions.

The inbox thread's part of `benchmarks/peer.py`, without the intake and the executor that
share its process (and its GIL) there. N deals are seeded in the fake HubSpot (its own
process, answering after `--hubspot-latency`) and polled once (they are known, as in
peer.py), then moved to Closed Won; their N signed webhooks are stored through the inbox
writer, and the timer runs while `InboxProcessor.drain` processes them in batches of 100
(as the daemon's inbox thread does with a backlog): fetch through the real hubspot-api-client
over HTTP, ingest, plan one GitHub issue each (not created: no executor runs), commit.

Prints deliveries/s, CPU ms per delivery of this process (the inbox thread and the HubSpot
read threads), and HubSpot requests per 1,000 deliveries.

    python benchmarks/inbox_drain.py [--n 3000] [--hubspot-latency 0.01]
                                     [--profile FILE [--wall]]

`--profile FILE`: py-spy (from PyPI) samples this process over the drain only, as collapsed
stacks with thread ids: the thread holding the GIL (where the CPU goes), or with `--wall`
every thread, idle or not (where the inbox thread waits).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from peer import HUBSPOT_SECRET, HUBSPOT_TOKEN, NO_LIMIT, FakeProcess, _hubspot_main  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from connectors.hubspot.signing import signed_request  # noqa: E402
from syncd.config import load_config  # noqa: E402
from syncd.engine import Engine  # noqa: E402
from syncd.inbox import Delivery  # noqa: E402
from syncd.logs import configure_logging  # noqa: E402
from syncd.store.inbox import count_by_status  # noqa: E402
from syncd.store.schema import actions  # noqa: E402


def write_config(tmp: Path, hubspot_url: str) -> Path:
    (tmp / "mappings").mkdir()
    (tmp / "mappings" / "bench.yaml").write_text(
        textwrap.dedent("""\
        rules:
          - id: bench-won-issue
            when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
            do:
              - github.create_issue:
                  repo: bench/drain
                  title: "Deal won: {{ deal.id }}"
                  body: "HubSpot deal {{ deal.id }} moved to Closed Won."
        """)
    )
    path = tmp / "syncd.toml"
    path.write_text(
        textwrap.dedent(f"""\
        [syncd]
        state_dir = "{tmp / "state"}"
        mappings = ["{tmp / "mappings"}"]
        log_level = "warning"
        [hubspot]
        base_url = "{hubspot_url}"
        requests_per_10s = {NO_LIMIT}
        search_requests_per_second = {NO_LIMIT}
        max_webhook_age_seconds = 3600
        timeout_seconds = 30
        [github]
        base_url = "http://127.0.0.1:9"
        """)
    )
    return path


@contextlib.contextmanager
def profiled(out: str | None, wall: bool) -> Iterator[None]:
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    mode = ["--idle"] if wall else ["--gil"]
    command = [spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "200"]
    proc = subprocess.Popen(
        [*command, "--threads", "--nonblocking", *mode, "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="webhooks (one deal each)")
    parser.add_argument("--hubspot-latency", type=float, default=0.01)
    parser.add_argument("--profile", metavar="FILE", help="py-spy samples of the drain")
    parser.add_argument("--wall", action="store_true", help="profile every thread, idle too")
    args = parser.parse_args()
    configure_logging("warning")
    os.environ.setdefault("SYNCD_HUBSPOT_ACCESS_TOKEN", HUBSPOT_TOKEN)
    os.environ.setdefault("SYNCD_HUBSPOT_APP_SECRET", HUBSPOT_SECRET)
    os.environ.setdefault("SYNCD_GITHUB_TOKEN", "bench-github-token")

    hubspot = FakeProcess(_hubspot_main, args.hubspot_latency)
    try:
        deals = hubspot.call("seed", args.n, timeout=600)
        with tempfile.TemporaryDirectory(prefix="syncd-drain-") as tmp:
            engine = Engine(load_config(write_config(Path(tmp), hubspot.url)), exclusive=True)
            engine.go_live()
            engine.refresh_lookups()
            engine.poller.poll_all()  # the deals are known: a webhook is a change, as in peer
            events = hubspot.call("win", deals, timeout=600)
            now = int(time.time() * 1000)
            waiting = []
            for n, event in enumerate(events):
                headers, body = signed_request(HUBSPOT_SECRET, "http://bench/hook", [event], now)
                waiting.append(
                    engine.writer.submit(Delivery("hubspot", f"d{n}", headers, body, now))
                )
            for stored in waiting:
                stored.result()
            hubspot.call("requests")  # from now on
            with profiled(args.profile, args.wall):
                wall, cpu = time.perf_counter(), time.process_time()
                drained = engine.inbox.drain()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            requests = hubspot.call("requests")
            done = count_by_status(engine.store).get("done", 0)
            with engine.store.tx() as conn:
                planned = conn.execute(select(func.count()).select_from(actions)).scalar_one()
            engine.close()
    finally:
        hubspot.stop()
    print(
        f"inbox drain of {drained} webhooks ({done} done, {planned} actions; hubspot latency "
        f"{args.hubspot_latency * 1000:.0f} ms): {drained / wall:.0f} deliveries/s, "
        f"cpu {cpu * 1000 / drained:.2f} ms/delivery, "
        f"hubspot req/1000={requests * 1000 / drained:.0f}"
    )


if __name__ == "__main__":
    main()
