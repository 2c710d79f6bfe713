"""`syncd hubspot ...`: operator commands for the HubSpot connector.

    syncd hubspot backfill [--since 2024-01-01] [--replay]

Backfill reads every deal (modified since the date) through the engine's ingest: by default
the snapshots are recorded without firing rules, so turning syncd on over a live portal opens
no issue for history; `--replay` fires the rules on every change since `--since` (or ever),
go-live or not (what fired before is recognised by its keys). It is resumable: the cursor
after each committed page is kept in the connector's key-value state, and cleared when the
backfill completes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from syncd.sdk import CommandHost, PollPage, config_option, pass_host, to_ms

RESUME_KEY = "backfill"


@dataclass
class BackfillReport:
    pages: int = 0
    events: int = 0
    actions: int = 0
    resumed: bool = False
    # Pages overlap at their boundary timestamp (see poll.py): count each deal once.
    seen: set[str] = field(default_factory=set)

    @property
    def deals(self) -> int:
        return len(self.seen)


def run_backfill(
    engine: Any,
    connector: Any,
    *,
    since: datetime | None,
    replay: bool,
    restart: bool = False,
    on_page: Callable[[BackfillReport], None] = lambda report: None,
    wrap: Callable[[Iterator[PollPage]], Iterator[PollPage]] = lambda pages: pages,
) -> BackfillReport:
    """Ingest every deal page by page; each committed page moves the resume cursor.

    The page is committed before its cursor is saved: a crash between the two ingests that
    page again on resume, which the snapshot versions make a no-op."""
    report = BackfillReport()
    saved = None if restart else connector.state.get(RESUME_KEY)
    if not isinstance(saved, dict):
        saved = {}
    cursor = saved.get("cursor")
    report.resumed = cursor is not None
    started = saved.get("since") if report.resumed else (since.isoformat() if since else None)
    pages = connector.backfill(since=since, cursor=cursor)
    # --replay acts on history on purpose: every change since the date (or ever) fires,
    # go-live or not; what fired before is recognised by its event and action keys.
    replay_since = (to_ms(datetime.fromisoformat(started)) if started else 0) if replay else None
    for page in wrap(pages):
        result = engine.ingestor.ingest(
            page.observations, fire=replay, replay_since_ms=replay_since
        )
        report.pages += 1
        report.seen.update(obs.ref.id for obs in page.observations)
        report.events += result.events
        report.actions += result.actions
        if page.more and page.cursor:
            connector.state.set(RESUME_KEY, {"cursor": page.cursor, "since": started})
        on_page(report)
    connector.state.set(RESUME_KEY, None)
    return report


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@click.group(name="hubspot")
def hubspot_cli() -> None:
    """HubSpot connector commands."""


@hubspot_cli.command()
@config_option
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only deals modified since this date (UTC); default: every deal.",
)
@click.option(
    "--replay",
    is_flag=True,
    help="Fire the rules on what is found (default: record snapshots only).",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming.")
@pass_host
def backfill(
    host: CommandHost, config_path: str | None, since: datetime | None, replay: bool, restart: bool
) -> None:
    """Read every deal into syncd's snapshots (resumable)."""
    config = host.load_config(config_path)
    with host.engine_for(config, "hubspot", "HubSpot (run the command again to resume)") as (
        engine,
        connector,
    ):
        report = _run_with_progress(engine, connector, _as_utc(since), replay, restart)
    what = "rules fired" if replay else "snapshots only, no rule fired"
    click.echo(
        f"backfill done{' (resumed)' if report.resumed else ''}: {report.deals} deals "
        f"in {report.pages} pages, {report.events} events, {report.actions} actions "
        f"({what})"
    )


def _run_with_progress(
    engine: Any, connector: Any, since: datetime | None, replay: bool, restart: bool
) -> BackfillReport:
    if not sys.stdout.isatty():

        def line(report: BackfillReport) -> None:
            click.echo(f"page {report.pages}: {report.deals} deals so far")

        return run_backfill(
            engine, connector, since=since, replay=replay, restart=restart, on_page=line
        )
    latest: list[BackfillReport] = []

    def keep(report: BackfillReport) -> None:
        latest[:] = [report]

    def show(_: Any) -> str:
        return f"{latest[0].deals} deals" if latest else ""

    def bar(pages: Iterator[PollPage]) -> Iterator[PollPage]:
        with click.progressbar(
            pages, label="Backfilling deals", show_pos=True, item_show_func=show
        ) as shown:
            yield from shown

    return run_backfill(
        engine, connector, since=since, replay=replay, restart=restart, on_page=keep, wrap=bar
    )
