"""`syncd github ...`: operator commands for the GitHub connector.

    syncd github redeliver --since 3d   # after an outage: GitHub sends failed deliveries again

GitHub never redelivers by itself, and its deliveries API only reaches back 3 days.
"""

from __future__ import annotations

import click

from syncd.sdk import CommandHost, config_option, parse_offset, pass_host

MAX_LOOKBACK_DAYS = 3  # what GitHub's deliveries API keeps


@click.group(name="github")
def github_cli() -> None:
    """GitHub connector commands."""


@github_cli.command()
@config_option
@click.option(
    "--since",
    default="3d",
    show_default=True,
    help="How far back to look for failed deliveries: 3d, 12h, 90m (GitHub keeps 3 days).",
)
@pass_host
def redeliver(host: CommandHost, config_path: str | None, since: str) -> None:
    """Ask GitHub to redeliver the webhook deliveries that failed (e.g. while syncd was down)."""
    try:
        window = parse_offset(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if window.total_seconds() <= 0:
        raise click.BadParameter("give a positive duration, e.g. 3d", param_hint="--since")
    if window.days > MAX_LOOKBACK_DAYS:
        click.echo(f"note: GitHub keeps deliveries for {MAX_LOOKBACK_DAYS} days only", err=True)
    config = host.load_config(config_path)
    with host.connector_for(config, "github", "GitHub") as connector:
        redelivered = connector.redeliver_failed(window)
    for delivery_id in redelivered:
        click.echo(f"redelivered delivery {delivery_id}")
    click.echo(f"{len(redelivered)} failed deliveries redelivered (last {since})")
