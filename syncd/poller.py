"""Polling: the safety net that makes syncd complete when webhooks are lost or absent.

Each (connector, stream) keeps a cursor. A page of observations and the cursor after it are
committed in one transaction, so the cursor never moves past data that is not saved.
"""

from __future__ import annotations

import structlog

from syncd.clock import Clock
from syncd.connector import Connector
from syncd.ingest import Ingestor, IngestResult
from syncd.metrics import POLLS
from syncd.store.cursors import CursorRow, all_cursors, read_cursor
from syncd.store.db import Store

log = structlog.get_logger("syncd.poller")


def poll_job(source: str, stream: str) -> str:
    return f"poll:{source}:{stream}"


class Poller:
    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        ingestor: Ingestor,
        clock: Clock,
        max_pages: int = 100,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.ingestor = ingestor
        self.clock = clock
        self.max_pages = max_pages

    def streams(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, conn in sorted(self.connectors.items()):
            if conn.can("poll") and conn.settings.enabled:
                out.extend((name, stream) for stream in conn.poll_streams())
        return out

    def poll_stream(self, name: str, stream: str, fence: int | None = None) -> IngestResult:
        """Read every page available now (bounded), committing each with its cursor.
        `fence`: the token of the poller's leadership (replicas), checked at each commit."""
        connector = self.connectors[name]
        self.ingestor.check_ready([(name, stream)])  # rules not ready: keep the cursor
        total = IngestResult()
        cursor = read_cursor(self.store, name, stream)
        # No cursor: the stream's first poll. It reads what exists; what predates go-live
        # is stored as snapshots without firing (see syncd.golive).
        baseline = cursor is None
        self.ingestor.golive.ensure(name)
        for _ in range(self.max_pages):
            page = connector.poll(stream, cursor)
            result = self.ingestor.ingest(
                page.observations,
                cursor=(name, stream, page.cursor),
                fence=(poll_job(name, stream), fence) if fence is not None else None,
                baseline_poll=baseline,
            )
            total.add(result)
            cursor = page.cursor
            if not page.more:
                break
        POLLS.labels(name, "ok").inc()
        if total.events or total.actions:
            log.info(
                "poll.changes",
                source=name,
                stream=stream,
                objects=total.observed,
                events=total.events,
                actions=total.actions,
            )
        if total.baselined:
            log.info(
                "poll.baselined",
                source=name,
                stream=stream,
                objects=total.baselined,
                reason="history from before go-live: snapshots only, no rule fired",
            )
        return total

    def poll_all(self) -> dict[tuple[str, str], IngestResult | Exception]:
        """One poll of every stream; a failing source does not stop the others."""
        out: dict[tuple[str, str], IngestResult | Exception] = {}
        for name, stream in self.streams():
            try:
                out[(name, stream)] = self.poll_stream(name, stream)
            except Exception as exc:
                POLLS.labels(name, "error").inc()
                log.warning("poll.failed", source=name, stream=stream, error=str(exc))
                out[(name, stream)] = exc
        return out

    def last_polls(self) -> list[CursorRow]:
        return all_cursors(self.store)
