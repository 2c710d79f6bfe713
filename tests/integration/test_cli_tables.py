"""`syncd actions list/show` for people (aligned table, names, human times) and for
scripts (--json), against a real store."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.clock import FakeClock
from tests.helpers import make_engine
from tests.integration.test_cli_operations import config_file, run


def test_actions_list_and_show_read_for_people_and_scripts(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "permanent")
    remote.put("item", "a", name="Ocean", stage="done")
    remote.put("item", "b", name="Sea", stage="review")
    engine.poller.poll_all()
    engine.executor.run_due(limit=1)
    engine.close()
    config = str(config_file(tmp_path, store_url))

    lines = run("actions", "list", "--config", config).splitlines()
    header = lines[0].split()
    assert header[:6] == ["ID", "STATUS", "TRIES", "RULE", "DOES", "OBJECT"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert set(rows) == {"dead", "pending"}
    assert "Ocean (localdb:item:a)" in rows["dead"] and "remote refused" in rows["dead"]
    assert "Sea (localdb:item:b)" in rows["pending"]
    assert " ago" in rows["dead"]
    # aligned: every row's OBJECT column starts where the header's does
    column = lines[0].index("OBJECT")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])

    scripted = [
        json.loads(line)
        for line in run("actions", "list", "--json", "--config", config).splitlines()
    ]
    assert {(a["status"], a["object_name"]) for a in scripted} == {
        ("dead", "Ocean"),
        ("pending", "Sea"),
    }
    dead_id = next(a["id"] for a in scripted if a["status"] == "dead")

    shown = run("actions", "show", str(dead_id), "--config", config)
    assert "object:    Ocean (localdb:item:a)" in shown
    assert "UTC (" in shown and "1700000" not in shown  # human times, not epoch ms
    assert "remote refused the call (400)" in shown
    raw = json.loads(run("actions", "show", str(dead_id), "--json", "--config", config))
    assert raw["status"] == "dead" and isinstance(raw["created_at"], int)
