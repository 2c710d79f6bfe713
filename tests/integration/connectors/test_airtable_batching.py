"""Upserts of one table planned together go to Airtable ten rows per request."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.airtable import AirtableConnector, AirtableSettings
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.localdb import LocalDbConnector, LocalDbSettings
from tests.integration.connectors.support import (
    TickingClock,
    action_rows,
    make_config,
    make_engine,
)

TOKEN = "patBatching.not-real"
BASE = "appBatching000001"
RULES = """
rules:
  - id: hub-row
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - airtable.upsert:
          table: hub
          merge_on: [Community]
          fields: {Community: "{{ item.community }}", Status: Active Service}
"""


def test_upserts_are_batched_by_ten_and_duplicates_kept_apart(
    tmp_path: Path, store_url: str
) -> None:
    from datetime import UTC, datetime

    clock = TickingClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    fake = FakeAirtable(token=TOKEN, base_id=BASE, clock=clock)
    fake.create_table("Active Hubs", {"Community": "singleLineText", "Status": "singleSelect"})
    with FakeServer(fake.app) as api:
        airtable = AirtableSettings(
            token=TOKEN,
            base_id=BASE,
            base_url=api.url,
            tables={"hub": "Active Hubs"},
            timeout_seconds=5,
        )
        localdb = LocalDbSettings(path=str(tmp_path / "remote.sqlite3"))
        config = make_config(tmp_path, store_url, RULES, {"airtable": airtable, "localdb": localdb})
        engine = make_engine(
            config,
            clock,
            {
                "airtable": AirtableConnector(airtable, clock),
                "localdb": LocalDbConnector(localdb, clock),
            },
        )
        remote = engine.connectors["localdb"].remote
        # 12 items; i3 names the same community as i1: 11 distinct rows.
        for i in range(12):
            remote.put("item", f"i{i}", community="c1" if i == 3 else f"c{i}", stage="done")
        engine.poller.poll_all()
        fake.app.log.clear()
        outcomes = engine.executor.drain(limit=50)
        engine.close()
    writes = [r for r in fake.app.log if r.method == "PATCH"]
    assert [o.status for o in outcomes] == ["done"] * 12
    assert sorted(r["fields"]["Community"] for r in fake.records("Active Hubs")) == sorted(
        f"c{i}" for i in range(12) if i != 3
    )
    # 12 actions in 3 requests: at most 10 rows each, and c1 twice cannot share a request
    # (i0-i2, then i3-i9, then i10-i11).
    assert len(writes) == 3
    assert sorted(len(json.loads(w.body)["records"]) for w in writes) == [2, 3, 7]
    assert all(a["external_id"].startswith("rec") for a in action_rows(engine))
