"""A syncd process for the crash tests: builds the engine from a TOML config, the way the
daemon does, runs one pass, prints a JSON report. Run with `SYNCD_CRASH_AT=<point>` it is
killed with SIGKILL at that point (see syncd/crashpoints.py).

    python crash_driver.py CONFIG --now 2026-01-05T09:00:00+00:00 --mode cycle|inbox

Modes: `cycle` is `Engine.run_once()`; `inbox` processes stored webhook deliveries and the
actions they plan, and polls nothing (so a change can only arrive through the webhook).
Extra crash point `inbox_before_commit`: the delivery's objects are fetched, the ingest
transaction not yet begun (not in the engine yet; armed here by wrapping the ingestor).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from syncd import crashpoints
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import Engine


class _CrashBeforeCommit:
    """The inbox's ingestor, with a crash point before its transaction."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def ingest(self, *args: Any, **kwargs: Any) -> Any:
        crashpoints.hit("inbox_before_commit")
        return self.inner.ingest(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # the rest (check_ready) as the real one
        return getattr(self.inner, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--now", required=True)
    parser.add_argument("--mode", choices=("cycle", "inbox"), default="cycle")
    args = parser.parse_args()
    clock = FakeClock(datetime.fromisoformat(args.now))
    engine = Engine(load_config(args.config), clock)
    engine.inbox.ingestor = _CrashBeforeCommit(engine.inbox.ingestor)  # type: ignore[assignment]
    try:
        if args.mode == "cycle":
            report = engine.run_once()
            out = {"inbox": report.inbox, "outcomes": [o.status for o in report.outcomes]}
        else:
            processed = engine.inbox.drain()
            out = {"inbox": processed, "outcomes": [o.status for o in engine.executor.drain()]}
    finally:
        engine.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
