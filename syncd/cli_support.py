"""What every `syncd` command needs, the engine's and the connectors' alike: the --config
option, loading the config (exit 2 with every problem), logging, and an engine opened for
the length of a command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from syncd.config import DEFAULT_CONFIG_PATHS, Config, load_config
from syncd.errors import ConfigError, SyncdError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config (default: $SYNCD_CONFIG, ./syncd.toml, /etc/syncd/config.toml).",
)


def load_or_exit(config_path: str | None) -> Config:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if config.path is None:  # else a command quietly makes ./state and finds nothing there
        looked_at = ", ".join(["--config", "$SYNCD_CONFIG", *DEFAULT_CONFIG_PATHS])
        click.echo(
            f"note: no config file (looked at {looked_at}): the defaults apply, with the "
            f"store in {config.state_dir} and the mappings in "
            f"{', '.join(map(str, config.mapping_paths))}",
            err=True,
        )
    return config


def setup_logging(config: Config, quiet: bool = False, background: bool = False) -> None:
    """`background`: for the daemon (syncd.logs: lines written by a thread of their own)."""
    from syncd.logs import configure_logging

    level = "warning" if quiet else config.syncd.log_level
    configure_logging(
        level, json=config.syncd.log_json, secrets=config.secret_values(), background=background
    )


@contextmanager
def engine_for(config: Config, connector_name: str, label: str) -> Iterator[tuple[Any, Any]]:
    """(engine, the named connector) for one command; errors become clear CLI messages
    (`label: ...`), and the engine is closed whatever happens."""
    from syncd.engine import Engine
    from syncd.mapping.loader import MappingError

    settings = config.connectors.get(connector_name)
    if settings is None or not settings.enabled:  # said before the engine reaches any API
        raise click.ClickException(f"no enabled [{connector_name}] table in the config")
    try:
        engine = Engine(config)
    except (SyncdError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        connector = engine.connectors.get(connector_name)
        if connector is None:
            raise click.ClickException(f"no enabled [{connector_name}] table in the config")
        yield engine, connector
    except SyncdError as exc:
        raise click.ClickException(f"{label}: {exc}") from None
    finally:
        engine.close()
