"""Shared by the connector integration tests: an engine from a config, served over HTTP, and
small readers of the store. Plain functions, not fixtures (the other tests import them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from syncd.clock import Clock, FakeClock
from syncd.config import Config, ExecutorSection, HttpSection, StoreSection, SyncdSection
from syncd.connector import Connector, ConnectorSettings
from syncd.engine import Engine
from syncd.store.schema import actions, inbox
from syncd.webapp import build_app
from tests.helpers import ServedApp

DRIVER = Path(__file__).with_name("crash_driver.py")
REPO_ROOT = Path(__file__).resolve().parents[3]


class TickingClock(FakeClock):
    """A fake service's clock when other processes (a CLI, a driver) on their own clocks talk
    to it: each reading moves it on a little, as real time would, so they do not trip its
    per-second rate limit."""

    def now(self) -> datetime:
        return self.advance(0.25)


def write_rules(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(textwrap.dedent(text))
    return folder


def make_config(
    tmp_path: Path,
    store_url: str,
    rules: str,
    settings: dict[str, ConnectorSettings],
    public_url: str = "",
    **executor: Any,
) -> Config:
    rules_dir = write_rules(tmp_path / "mappings", rules)
    return Config(
        path=None,
        syncd=SyncdSection(state_dir=str(tmp_path / "state"), mappings=[str(rules_dir)]),
        store=StoreSection(url=store_url),
        http=HttpSection(public_url=public_url),
        executor=ExecutorSection(**executor),
        connectors=dict(settings),
    )


def hubspot_settings(fake: Any, url: str, timeout_seconds: float = 5) -> Any:
    """The hubspot connector's settings for a fake HubSpot (its token and app secret)
    served at `url`."""
    from connectors.hubspot import HubSpotSettings

    return HubSpotSettings(
        access_token=fake.token,
        app_secret=fake.app_secret,
        base_url=url,
        timeout_seconds=timeout_seconds,
    )


def make_engine(config: Config, clock: Clock, connectors: dict[str, Connector]) -> Engine:
    return Engine(config, clock, connectors=connectors)


def serve(engine: Engine) -> ServedApp:
    """The real webhook app of `engine` on a real port (use as a context manager)."""
    app = build_app(
        connectors=engine.connectors,
        writer=engine.writer,
        clock=engine.clock,
        max_body_bytes=engine.config.http.max_body_bytes,
    )
    return ServedApp(app)


def post(
    server: ServedApp, connector: str, headers: dict[str, str], body: bytes
) -> requests.Response:
    return requests.post(
        f"{server.url}/webhooks/{connector}", data=body, headers=headers, timeout=10
    )


def action_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        query = select(actions).order_by(actions.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def inbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(inbox).order_by(inbox.c.id)).mappings()]


def toml_value(value: Any) -> str:
    """A TOML literal: strings, numbers, bools and lists as JSON writes them; tables inline."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_toml(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {toml_value(v)}" for key, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def run_driver(
    config: Path, now: str, mode: str, crash_at: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the driver in a fresh Python process (optionally armed to SIGKILL itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_CRASH")}
    if crash_at:
        env["SYNCD_CRASH_AT"] = crash_at
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(DRIVER), str(config), "--now", now, "--mode", mode],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
