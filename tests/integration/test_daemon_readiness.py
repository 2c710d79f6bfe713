"""/readyz says when the polling safety net is down (no successful poll for too long)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.daemon import Daemon
from tests.helpers import write_rules


def test_readiness_reports_a_source_not_polled_for_three_intervals(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "mappings")
    config_path = tmp_path / "syncd.toml"
    config_path.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
poll_interval_seconds = 10
""")
    daemon = Daemon(load_config(config_path))
    clock = FakeClock(datetime.now(UTC))
    daemon.engine.clock = daemon.engine.poller.clock = daemon.engine.ingestor.clock = clock
    daemon.started_at = int(clock.now().timestamp() * 1000)
    try:
        assert daemon.readiness()["ready"] is True
        clock.advance(91)  # 3 x 10 s + 60 s of grace, and one more
        state = daemon.readiness()
        assert state["ready"] is False
        assert state["problems"] == ["localdb.item not polled for 91 s"]
        daemon.engine.poller.poll_stream("localdb", "item")  # a successful (empty) poll
        assert daemon.readiness()["ready"] is True
    finally:
        daemon.engine.close()
