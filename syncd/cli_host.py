"""The engine's side of a connector's command: the `CommandHost` that `syncd` puts in click's
context, so `syncd airtable webhooks ensure` gets its config and connector without the
connector importing the CLI or the engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from syncd.cli_support import engine_for, load_or_exit, setup_logging
from syncd.config import Config
from syncd.errors import ConfigError, SyncdError
from syncd.sdk import CommandHost


class EngineCommands(CommandHost):
    def load_config(self, config_path: str | None) -> Config:
        config = load_or_exit(config_path)
        setup_logging(config, quiet=True)
        return config

    def engine_for(self, config: Config, connector_name: str, label: str) -> Any:
        return engine_for(config, connector_name, label)

    @contextmanager
    def connector_for(self, config: Config, connector_name: str, label: str) -> Iterator[Any]:
        from syncd.clock import SystemClock
        from syncd.engine import build_connectors

        if connector_name not in config.connectors:
            raise click.ClickException(f"no [{connector_name}] table in the config")
        try:
            connector = build_connectors(config, SystemClock())[connector_name]
        except (ConfigError, KeyError) as exc:
            raise click.ClickException(f"cannot start the {label} connector: {exc}") from None
        try:
            yield connector
        except SyncdError as exc:
            raise click.ClickException(f"{label}: {exc}") from None
        finally:
            connector.close()
