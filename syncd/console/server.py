"""The console's own listener beside the webhook one, started by the daemon
(`[console] listen`, 127.0.0.1:8081 by default; `enabled = false` turns it off)."""

from __future__ import annotations

from typing import Any

import structlog
import uvicorn

from syncd.config import Config, HttpSection
from syncd.console.app import Console, build_console_app
from syncd.console.auth import Keys, load_or_create_token, token_path
from syncd.http_server import uvicorn_config
from syncd.logs import add_secrets

log = structlog.get_logger("syncd.console")


def console_server_config(config: Config, engine: Any) -> uvicorn.Config | None:
    """The console's uvicorn config, or None when it is off. Reads (or makes) the token."""
    if not config.console.enabled:
        return None
    token = load_or_create_token(config)
    add_secrets([token])  # never in a log line, whatever prints it
    console = Console(
        engine.store, engine.rules, engine.clock, sorted(engine.connectors), Keys(token)
    )
    http: HttpSection = config.http.model_copy(
        update={"host": config.console.host, "port": config.console.port, "max_connections": 64}
    )
    log.info("console.listening", listen=config.console.listen, token_file=str(token_path(config)))
    return uvicorn_config(build_console_app(console), http)
