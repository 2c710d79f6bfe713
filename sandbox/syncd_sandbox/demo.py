"""`syncd demo`: the shipped rules at work on a local sandbox, without credentials or network.

Starts local fakes of HubSpot, GitHub, Airtable, Jira and an SMTP server, points syncd at them
(SQLite store, the shipped mappings), plays a scripted sales story and prints each effect as
it happens, with the rule that caused it. Then it keeps running so you can make your own
changes at the fakes (Ctrl-C stops). `--once` checks that every expected effect happened
exactly once, replays everything to show nothing happens twice, and exits.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syncd.shipped import shipped_mappings

if TYPE_CHECKING:  # the sandbox (fakes, SMTP server) is imported only when the demo runs
    from syncd_sandbox.world import SandboxRun
    from syncd_sandbox.world.effects import Effects

LIVE_TICK_SECONDS = 1.0
SHIPPED_MAPPINGS = shipped_mappings()


@click.command()
@click.option(
    "--once", is_flag=True, help="Play the story, check every effect happened exactly once, exit."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the SQLite store goes (default: a temporary directory).",
)
@click.option(
    "--mappings",
    type=click.Path(file_okay=False),
    default=str(SHIPPED_MAPPINGS),
    show_default=True,
    help="Mapping files to run (the story's checks expect the shipped ones).",
)
@click.option("--verbose", is_flag=True, help="Engine logs (info) on stderr.")
def demo(once: bool, state_dir: str | None, mappings: str, verbose: bool) -> None:
    """Run the shipped workflows against a local sandbox (no credentials, no network)."""
    from syncd.logs import configure_logging
    from syncd_sandbox.world import run_sandbox

    if not Path(mappings).is_dir():
        raise click.ClickException(
            f"no mapping folder at {mappings}: pass --mappings PATH/TO/mappings"
        )

    configure_logging("info" if verbose else "error", json=False)
    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as scratch:
        where = Path(state_dir) if state_dir else Path(scratch)
        with run_sandbox(where, mappings=Path(mappings), say=click.echo) as run:
            _header(run)
            started = time.monotonic()
            run.story.play()
            if once:
                sys.exit(_check(run, time.monotonic() - started))
            _live(run)


def _header(run: SandboxRun) -> None:
    click.echo("syncd demo: the shipped mappings against local fakes (nothing leaves this machine)")
    for name, url in run.box.urls().items():
        click.echo(f"  {name:<9}{url}")
    click.echo(f"  webhooks {run.hooks.url}/webhooks/<connector>")
    click.echo(
        f"  rules    {len(run.engine.rules.current.rules)} from "
        f"{', '.join(sorted(str(Path(f).name) for f in run.engine.rules.current.files))}"
    )


def _summary(seen: Effects) -> list[str]:
    return [
        f"GitHub issues opened: {sum(seen.issues.values())} ({len(seen.closed_issues)} closed "
        "by people)",
        f"emails sent: {sum(seen.emails.values())}",
        f"Airtable leads rows: {seen.lead_rows} "
        f"({sum(1 for s in seen.lead_status.values() if s == 'Active Service')} Active Service)",
        "HubSpot deals with a maintenance tier: "
        f"{sum(1 for d in seen.deals.values() if d['maintenance_tier'])}",
        f"Jira tickets created: {sum(seen.tickets.values())}",
        f"engagement issues opened (W16): {sum(seen.engagement_issues.values())}",
        f"Airtable Active Hubs rows: {len(seen.hubs)}",
    ]


def _check(run: SandboxRun, seconds: float) -> int:
    """0 when the fakes hold exactly the expected effects, before and after a replay."""
    from syncd_sandbox.world import expected, observe

    want = expected(run.box)
    problems = observe(run.box).differences(want)
    actions_before = len(run.story.feed.all())
    run.story.replay()
    after = observe(run.box)
    problems += [f"after replay: {p}" for p in after.differences(want)]
    new_actions = len(run.story.feed.all()) - actions_before
    if new_actions:
        problems.append(f"after replay: {new_actions} new action(s) planned")
    click.echo("")
    click.echo(f"Summary ({seconds:.1f} s of story):")
    for line in _summary(after):
        click.echo(f"  {line}")
    if problems:
        click.echo("FAILED: the fakes do not hold what the story expects:", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        return 1
    click.echo("OK: every expected effect happened exactly once; the replay changed nothing.")
    return 0


def _live(run: SandboxRun) -> None:
    from syncd_sandbox.world.fakes import AIRTABLE_TOKEN, GITHUB_TOKEN, HUBSPOT_TOKEN

    box = run.box
    cryo = box.seeded.communities["cryoatlas"].deal_id
    click.echo("")
    click.echo("Your turn. syncd keeps running (one cycle a second); the fakes are yours:")
    click.echo(f"  HubSpot  (Bearer {HUBSPOT_TOKEN}): move Cryo Atlas to Closed Won:")
    click.echo(
        f"    curl -X PATCH {box.hubspot_url}/crm/v3/objects/deals/{cryo} "
        f"-H 'Authorization: Bearer {HUBSPOT_TOKEN}' -H 'Content-Type: application/json' "
        '-d \'{"properties": {"dealstage": "closedwon"}}\''
    )
    click.echo(f"  GitHub   (token {GITHUB_TOKEN}): close an issue of 2i2c-org/infrastructure:")
    click.echo(
        f"    curl -X PATCH {box.github.base_url}/repos/2i2c-org/infrastructure/issues/3 "
        f"-H 'Authorization: token {GITHUB_TOKEN}' -d '{{\"state\": \"closed\"}}'"
    )
    click.echo(
        f"  Airtable (Bearer {AIRTABLE_TOKEN}): base {box.airtable.base_id}, "
        f"table Leads, at {box.airtable_url}/v0/"
    )
    click.echo(
        f"  Webhooks are received at {run.hooks.url}/webhooks/<connector>; HubSpot and "
        "Airtable changes are forwarded there as signed deliveries each second."
    )
    click.echo("Ctrl-C stops.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last = time.monotonic()
    try:
        while not stop.is_set():
            time.sleep(LIVE_TICK_SECONDS)
            now = time.monotonic()
            box.clock.advance(now - last)  # the story's clock now follows real time
            last = now
            run.story.forward_webhooks()
            run.story.cycle()
    except KeyboardInterrupt:
        pass
    click.echo("\nstopped.")
