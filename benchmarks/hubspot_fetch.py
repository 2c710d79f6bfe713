"""Wall time and CPU of the inbox's HubSpot fetch, one batch of hinted deals at a time.

What the inbox thread does for each batch of webhooks it claims (`HubSpotConnector.
fetch_many`: deal batch reads with history, association reads, then company and contact
reads), against the fake HubSpot in its own process answering after `--latency`, through the
real hubspot-api-client over HTTP. Printed: per batch, the median wall time (what the inbox
thread waits) and CPU time of this process (the caller and the read threads; the fake's is
not counted), and the requests per batch.

    python benchmarks/hubspot_fetch.py [--deals 100] [--batches 40] [--latency 0.01] [--context]

`--context`: every deal has a company and a contact (two more reads per batch).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.hubspot import HubSpotConnector, HubSpotSettings  # noqa: E402
from syncd.clock import SystemClock  # noqa: E402
from syncd.model import ObjectRef  # noqa: E402

TOKEN = "bench-hubspot-token"
SECRET = "bench-hubspot-app-secret"
NO_LIMIT = 1_000_000_000


def _fake_main(conn: Connection, latency: float, deals: int, context: bool) -> None:
    from syncd_sandbox.hubspot.fake import FakeHubSpot

    fake = FakeHubSpot(
        token=TOKEN,
        app_secret=SECRET,
        general_limit=NO_LIMIT,
        search_limit=NO_LIMIT,
        latency_seconds=latency,
    )
    server = fake.serve().start()
    ids = []
    for i in range(deals):
        deal = fake.create_deal(dealname=f"Bench deal {i}", amount=1000 + i, dealstage="closedwon")
        if context:
            fake.add_company(deal, name=f"Company {i}")
            fake.add_contact(deal, "Buyer", firstname=f"Ada {i}")
        ids.append(deal)
    conn.send((server.url, ids, len(fake.app.log)))
    while conn.recv() == "requests":
        conn.send(len(fake.app.log))
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100, help="deals per batch")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.01, help="the fake's seconds/request")
    parser.add_argument("--context", action="store_true", help="a company and contact each")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.Process(
        target=_fake_main, args=(theirs, args.latency, args.deals, args.context), daemon=True
    )
    fake.start()
    url, ids, _ = ours.recv()
    settings = HubSpotSettings(
        access_token=TOKEN,
        app_secret=SECRET,
        base_url=url,
        portal_id=62515,
        requests_per_10s=NO_LIMIT,
        search_requests_per_second=NO_LIMIT,
        timeout_seconds=30,
    )
    connector = HubSpotConnector(settings, SystemClock())
    refs = [ObjectRef("hubspot", "deal", i) for i in ids]
    connector.fetch_many(refs)  # warm: stage catalogue, connections, the rate-limit answer
    walls, cpus = [], []
    ours.send("requests")
    before = ours.recv()
    for _ in range(args.batches):
        wall, cpu = time.perf_counter(), time.process_time()
        found = connector.fetch_many(refs)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert len(found) == len(refs)
    ours.send("requests")
    requests = (ours.recv() - before) / args.batches
    ours.send("stop")
    connector.close()
    fake.join(timeout=10)
    print(
        f"fetch of {args.deals} deals (context={'yes' if args.context else 'no'}, "
        f"latency {args.latency * 1000:.0f} ms), {args.batches} batches: "
        f"wall p50 {statistics.median(walls) * 1000:.1f} ms, "
        f"cpu p50 {statistics.median(cpus) * 1000:.1f} ms, "
        f"{requests:.1f} requests/batch"
    )


if __name__ == "__main__":
    main()
