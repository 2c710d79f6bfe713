"""`syncd backfill SOURCE [--since DATE] [--replay]`: read every object of a source again.

The explicit way to act on history, for any source that can poll. Every stream of the
source is read from the start (the poll with no cursor), without touching the daemon's
cursors. Without `--replay`, what is read is recorded as snapshots and no rule fires. With
`--replay`, every change since `--since` (default: ever) fires as if syncd had been watching,
go-live or not; what fired before is recognised by its event and action keys, so running it
twice acts once. (`syncd hubspot backfill` is HubSpot's resumable variant.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.clock import to_ms

MAX_PAGES = 100_000


@dataclass
class Report:
    objects: int = 0
    events: int = 0
    actions: int = 0


def backfill(engine: Any, source: str, *, since: datetime | None, replay: bool) -> Report:
    connector = engine.connectors[source]
    if not connector.can("poll"):
        raise ValueError(f"{source} cannot list its objects (no poll): nothing to backfill")
    replay_since = (to_ms(since) if since else 0) if replay else None
    report = Report()
    engine.ingestor.golive.ensure(source)
    for stream in connector.poll_streams():
        cursor = None
        for _ in range(MAX_PAGES):
            page = connector.poll(stream, cursor)
            result = engine.ingestor.ingest(
                page.observations, fire=replay, replay_since_ms=replay_since
            )
            report.objects += result.observed
            report.events += result.events
            report.actions += result.actions
            cursor = page.cursor
            if not page.more:
                break
    return report
