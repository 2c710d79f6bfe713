"""syncd pointed at the sandbox: a Config (SQLite in a state dir, the shipped mappings), the
engine on the sandbox's clock, and the webhook HTTP app on a free 127.0.0.1 port.

The webhook app is the daemon's own (`syncd.webapp.build_app`), fed by the engine's inbox
writer; only the clock differs from `syncd run`: the story moves time forward by days, so the
sandbox drives `Engine.run_once()` itself instead of the daemon's wall-clock loops.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from syncd.clock import Clock
from syncd.config import AlertsSection, Config, HttpSection, StoreSection, SyncdSection
from syncd.connector import Connector, ConnectorSettings
from syncd.engine import Engine, build_connectors
from syncd.shipped import shipped_mappings
from syncd.webapp import build_app

SHIPPED_MAPPINGS = shipped_mappings()


def sandbox_config(
    state_dir: Path,
    settings: dict[str, ConnectorSettings],
    mappings: Path = SHIPPED_MAPPINGS,
    mapping_vars: dict[str, Any] | None = None,
) -> Config:
    """The config of a syncd running against the sandbox: its store is SQLite in
    `state_dir`, its rules the shipped mapping files."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return Config(
        path=None,
        syncd=SyncdSection(
            state_dir=str(state_dir), mappings=[str(mappings)], vars=mapping_vars or {}
        ),
        store=StoreSection(url=f"sqlite:///{state_dir / 'syncd.sqlite3'}"),
        http=HttpSection(host="127.0.0.1", port=0),
        # the partnerships inbox hears of failures (the story's malformed fee, W7)
        alerts=AlertsSection(to=["partnerships@example.org"]),
        connectors=dict(settings),
    )


def start_engine(
    config: Config, clock: Clock, connectors: dict[str, Connector] | None = None
) -> Engine:
    return Engine(config, clock, connectors=connectors or build_connectors(config, clock))


class WebhookServer:
    """The daemon's webhook app (`POST /webhooks/<connector>`) served on a free port."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0) -> None:
        app = build_app(
            connectors=engine.connectors,
            writer=engine.writer,
            clock=engine.clock,
            max_body_bytes=engine.config.http.max_body_bytes,
        )
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name="sandbox-webhooks",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def webhook_url(self, connector: str) -> str:
        return f"{self.url}/webhooks/{connector}"

    def start(self) -> WebhookServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
