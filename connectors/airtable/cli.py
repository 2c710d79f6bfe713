"""`syncd airtable ...`: operator commands for the Airtable connector.

    syncd airtable webhooks ensure    # create the webhooks the mappings need, keep their secrets
    syncd airtable webhooks refresh   # extend their 7-day life (the daemon does it daily)

The connector is built inside an `Engine`, so the webhooks' MAC secrets land in the same
secret file (and their cursors in the same store) the daemon reads.
"""

from __future__ import annotations

import click

from syncd.sdk import CommandHost, config_option, pass_host

WEBHOOK_PATH = "/webhooks/airtable"


@click.group(name="airtable")
def airtable_cli() -> None:
    """Airtable connector commands."""


@airtable_cli.group()
def webhooks() -> None:
    """Airtable webhooks (pings that make changes reach syncd in seconds)."""


@webhooks.command()
@config_option
@click.option(
    "--all-tables",
    is_flag=True,
    help="One webhook per configured table, not only the tables the mappings watch.",
)
@pass_host
def ensure(host: CommandHost, config_path: str | None, all_tables: bool) -> None:
    """Create the webhooks the mappings need, pinging [http] public_url + /webhooks/airtable."""
    config = host.load_config(config_path)
    if not config.http.public_url:
        raise click.ClickException(
            "set [http] public_url: the base URL Airtable can reach syncd at"
        )
    url = config.http.public_url.rstrip("/") + WEBHOOK_PATH
    with host.engine_for(config, "airtable", "Airtable") as (engine, connector):
        aliases = None if all_tables else connector.watched_tables(engine.rules.current)
        if aliases == []:
            click.echo(
                "no mapping reacts to an Airtable table: no webhook needed "
                "(--all-tables creates one per configured table)"
            )
            return
        created = connector.ensure_webhooks(url, aliases)
    for alias, webhook_id in sorted(created.items()):
        click.echo(f"{alias}: webhook {webhook_id} -> {url}")
    click.echo(f"{len(created)} webhook(s) ready; their secrets are in the state directory")


@webhooks.command()
@config_option
@pass_host
def refresh(host: CommandHost, config_path: str | None) -> None:
    """Extend the webhooks' life by 7 days; create again any that expired."""
    config = host.load_config(config_path)
    with host.engine_for(config, "airtable", "Airtable") as (_, connector):
        report = connector.refresh_webhooks()
    for webhook_id in report.refreshed:
        click.echo(f"refreshed {webhook_id}")
    for old, new in sorted(report.recreated.items()):
        click.echo(f"recreated {old} (expired) as {new}")
    click.echo(f"{len(report.refreshed)} refreshed, {len(report.recreated)} recreated")
