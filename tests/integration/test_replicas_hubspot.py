"""Three replicas on PostgreSQL against the fake HubSpot with its real limit (100 requests per
10 s per account), killed and restarted while HubSpot's pipelines endpoint answers 429, 500
and resets: every stage change makes its effect once, and the replicas together never go
over the limit (issue 21)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from syncd.store.schema import actions
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.hubspot.fake_limits import GENERAL_WINDOW
from tests.conftest import PG_URL, _psycopg_url
from tests.helpers import free_port, write_rules
from tests.integration.connectors.test_hubspot_stage_labels import fail_pipelines
from tests.integration.test_replicas import Replica

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="replicas need PostgreSQL: set SYNCD_TEST_DATABASE_URL"
)

DEALS = 55  # 110 notes (a request each, at least): more than one 10 s budget
RULES = """
rules:
  - id: w3-collect-signatures
    when: {source: hubspot, object: deal, field: dealstage, to: Contract Admin}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Signatures: {{ deal.dealname }}"}
  - id: w1-new-hub
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "New Hub: {{ deal.dealname }}"}
"""


def replica_config(
    tmp_path: Path, index: int, store_url: str, rules: Path, hubspot_url: str
) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / f"replica{index}.toml"
    path.write_text(f"""
[syncd]
state_dir = "{tmp_path / f"state{index}"}"
mappings = ["{rules}"]
log_level = "warning"
[store]
url = "{store_url}"
[http]
port = {port}
[executor]
lease_seconds = 30
backoff_base_seconds = 0.5
backoff_max_seconds = 5
workers = 2
[scheduler]
tick_seconds = 1
[hubspot]
base_url = "{hubspot_url}"
poll_interval_seconds = 1
timeout_seconds = 5
""")
    return path, port


class Arrivals:
    """When each request HubSpot counts reached the fake."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, request: FakeRequest) -> FakeResponse | None:
        with self.lock:
            self.times.append(time.monotonic())
        return None

    def busiest_window(self) -> int:
        times = sorted(self.times)
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] <= t - GENERAL_WINDOW:
                start += 1
            best = max(best, end - start + 1)
        return best


def test_three_replicas_share_hubspot_budget_and_lose_no_stage_change(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, report_figure
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("this test is about PostgreSQL replicas")
    rng = random.Random(21)
    fake = FakeHubSpot()  # HubSpot's real limit: 100 requests / 10 s, search 4 / s
    arrivals = Arrivals()
    # just before the fake's own limiter: the requests HubSpot counts
    fake.app.before.insert(fake.app.before.index(fake.limits.check), arrivals)
    monkeypatch.setenv("SYNCD_HUBSPOT_ACCESS_TOKEN", fake.token)
    monkeypatch.setenv("SYNCD_HUBSPOT_APP_SECRET", fake.app_secret)
    rules = write_rules(tmp_path / "mappings", RULES)
    deals = {
        fake.create_deal(dealname=f"Hub{i:02d}", dealstage="negotiation"): f"Hub{i:02d}"
        for i in range(DEALS)
    }
    db = create_engine(_psycopg_url(store_url))
    with fake.serve() as server:
        replicas = [
            Replica(*replica_config(tmp_path, n, store_url, rules, server.url)) for n in range(3)
        ]
        try:
            for _ in range(3):  # the first start: never read, and the reads fail for a
                fail_pipelines(fake)  # while (backoff 2, 4, 8 s): the first deals move then
            for r in replicas:
                r.start()
            order = list(deals)
            rng.shuffle(order)
            for step, deal_id in enumerate(order):
                fake.move_deal(deal_id, "contractadmin")
                time.sleep(0.01)  # a moment apart, as a user would
                fake.move_deal(deal_id, "closedwon")
                if rng.random() < 0.5:  # half announced by webhook too, to any replica
                    live = [r for r in replicas if r.proc and r.proc.poll() is None]
                    target = rng.choice(live)
                    headers, body = fake.webhook(f"http://127.0.0.1:{target.port}/webhooks/hubspot")
                    requests.post(
                        f"http://127.0.0.1:{target.port}/webhooks/hubspot",
                        data=body,
                        headers=headers,
                        timeout=10,
                    )
                if step in (6, 30):  # kill -9 one, restart it while the pipelines fail
                    victim = rng.choice(replicas)
                    victim.kill()
                    fail_pipelines(fake)
                    victim.start()
                time.sleep(rng.uniform(0.1, 0.4))
            expected = {d: [f"Signatures: {n}", f"New Hub: {n}"] for d, n in deals.items()}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with db.connect() as conn:
                    open_actions = conn.execute(
                        select(func.count()).where(actions.c.status.in_(("pending", "in_flight")))
                    ).scalar()
                made = {d: [n.split("\n")[0] for n in fake.notes_of(d)] for d in deals}
                if open_actions == 0 and all(len(v) >= 2 for v in made.values()):
                    break
                time.sleep(0.5)
        finally:
            for r in replicas:
                r.stop()
            db.dispose()
    made = {d: sorted(n.split("\n")[0] for n in fake.notes_of(d)) for d in deals}
    lost = sum(len(set(expected[d]) - set(made[d])) for d in deals)
    duplicated = sum(len(made[d]) - len(set(made[d])) for d in deals)
    busiest = arrivals.busiest_window()
    report_figure(
        f"hubspot replicas: {2 * DEALS} effects expected, {lost} lost, "
        f"{duplicated} duplicated; {len(arrivals.times)} requests, at most {busiest} "
        f"in any 10 s (limit 100), {fake.limits.over_limit} refused as over the "
        f"limit; pipeline faults left: {sum(f.remaining for f in fake.faults.pending)}"
    )
    assert sum(f.remaining for f in fake.faults.pending) == 0  # every injected fault was met
    assert lost == 0 and duplicated == 0
    assert made == {d: sorted(v) for d, v in expected.items()}
    assert len(arrivals.times) > 100  # the work needed more than one window's budget
    assert fake.limits.over_limit == 0
    assert busiest <= 100
