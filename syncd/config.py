"""Configuration: one TOML file, checked at start with every problem listed at once.

Each key can be overridden by `SYNCD_<SECTION>_<KEY>`. A secret key (a `SecretStr` setting)
may also come from `<key>_file = "/path"` in the file, or from a systemd credential named
`<section>_<key>` in `$CREDENTIALS_DIRECTORY`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from syncd import connector as connector_registry
from syncd.connector import ConnectorSettings, UnknownConnector
from syncd.errors import ConfigError

DEFAULT_CONFIG_PATHS = ("syncd.toml", "/etc/syncd/config.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyncdSection(_Section):
    state_dir: str = "./state"
    mappings: list[str] = ["mappings"]
    log_level: str = "info"
    log_json: bool | None = None  # None: JSON when stderr is not a terminal
    allow_empty_rules: bool = False  # a reload giving no rules is refused unless true
    # How often value names the rules use (HubSpot stage labels) are read again.
    lookup_refresh_seconds: float = Field(300, gt=0)
    # Values that replace the same names in the mapping files' `vars:` (a switch such as
    # W16's delivery_tracker, chosen per deployment without editing the rule files).
    vars: dict[str, Any] = {}


class StoreSection(_Section):
    url: str = ""  # empty: sqlite:///<state_dir>/syncd.sqlite3
    retention_days: int = Field(90, ge=1)
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class HttpSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""  # the base URL as webhook senders call it (behind a proxy)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Slow or numerous clients: a request's headers, then its body, must arrive within these;
    # connections past max_connections are closed at once.
    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(30.0, gt=0, le=600)
    keep_alive_seconds: int = Field(5, ge=1, le=300)
    max_connections: int = Field(1000, ge=1)


class ConsoleSection(_Section):
    """The operator's web console: its own listener, loopback by default, behind a token."""

    enabled: bool = True
    listen: str = Field("127.0.0.1:8081", pattern=r"^[^\s]*:\d{1,5}$")  # host:port
    # A file holding the token; empty: <state_dir>/console-token, made at the first start.
    token_file: str = ""

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class ExecutorSection(_Section):
    workers: int = Field(8, ge=1, le=64)
    # Default bound on the workers performing one connector's actions at once (a
    # connector's own `max_in_flight` wins): half, so a slow API leaves the others theirs.
    max_in_flight: int | None = Field(None, ge=1)
    max_attempts: int = Field(8, ge=1)
    lease_seconds: float = Field(300, gt=0)
    backoff_base_seconds: float = Field(10, gt=0)
    backoff_max_seconds: float = Field(3600, gt=0)
    batch_size: int = Field(50, ge=1)
    # Creates planned before this process started, in its first minutes, or for changes made
    # before then, look for their marker before the first try (a restored or lost store).
    lookup_window_seconds: float = Field(300, ge=0)


class InboxSection(_Section):
    max_attempts: int = Field(20, ge=1)
    # Threads turning stored deliveries into events. Each takes its own batch (leased), so
    # with 2 one fetches from the API while another ingests (worth it when the API is slow);
    # but the batches get smaller, so more read requests per webhook (issue 17 counts them).
    # 0: this replica only receives and stores webhooks; another replica processes them.
    workers: int = Field(1, ge=0, le=16)


class SchedulerSection(_Section):
    grace_hours: float = Field(24, ge=0)
    tick_seconds: float = Field(30, gt=0)


class AlertsSection(_Section):
    to: list[str] = []
    period_minutes: float = Field(60, gt=0)
    via: str = "email"


CORE_SECTIONS: dict[str, type[_Section]] = {
    "syncd": SyncdSection,
    "store": StoreSection,
    "http": HttpSection,
    "executor": ExecutorSection,
    "inbox": InboxSection,
    "scheduler": SchedulerSection,
    "alerts": AlertsSection,
    "console": ConsoleSection,
}


class Config(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path | None
    syncd: SyncdSection = SyncdSection()
    store: StoreSection = StoreSection()
    http: HttpSection = HttpSection()
    executor: ExecutorSection = ExecutorSection()
    inbox: InboxSection = InboxSection()
    scheduler: SchedulerSection = SchedulerSection()
    alerts: AlertsSection = AlertsSection()
    console: ConsoleSection = ConsoleSection()
    connectors: dict[str, ConnectorSettings] = {}
    secret_files: list[Path] = []  # every `<key>_file` read, for the start-up mode check

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def state_dir(self) -> Path:
        return self.resolve(os.environ.get("STATE_DIRECTORY") or self.syncd.state_dir)

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.state_dir / 'syncd.sqlite3'}"

    @property
    def mapping_paths(self) -> list[Path]:
        return [self.resolve(p) for p in self.syncd.mappings]

    def secret_values(self) -> list[str]:
        out: list[str] = []
        for settings in self.connectors.values():
            for value in settings.__dict__.values():
                if isinstance(value, SecretStr) and value.get_secret_value():
                    out.append(value.get_secret_value())
        return out


def find_config(path: str | None) -> Path | None:
    if path:
        return Path(path)
    if os.environ.get("SYNCD_CONFIG"):
        return Path(os.environ["SYNCD_CONFIG"])
    for candidate in DEFAULT_CONFIG_PATHS:
        if Path(candidate).exists():
            return Path(candidate)
    return None


def _env_value(raw: str) -> Any:
    """Lists and tables in environment variables are written as JSON."""
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _apply_env(data: dict[str, dict[str, Any]], sections: set[str], env: dict[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith("SYNCD_") or name == "SYNCD_CONFIG":
            continue
        rest = name[len("SYNCD_") :].lower()
        for section in sorted(sections, key=len, reverse=True):
            if rest.startswith(section + "_"):
                data.setdefault(section, {})[rest[len(section) + 1 :]] = _env_value(raw)
                break


def _fill_secrets(
    section: str,
    model: type[BaseModel],
    values: dict[str, Any],
    problems: list[str],
    secret_files: list[Path] | None = None,
) -> None:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    for key, field in model.model_fields.items():
        is_secret = "SecretStr" in repr(field.annotation)
        file_key = f"{key}_file"
        if file_key in values:
            path = Path(str(values.pop(file_key))).expanduser()
            if not is_secret:
                problems.append(f"[{section}] {file_key}: {key} is not a secret setting")
            elif values.get(key):
                problems.append(f"[{section}] {key}: given both inline and as {file_key}")
            else:
                try:
                    values[key] = path.read_text().strip()
                    if secret_files is not None:
                        secret_files.append(path)
                except OSError as exc:
                    problems.append(f"[{section}] {file_key}: cannot read {path}: {exc.strerror}")
        if is_secret and not values.get(key) and creds:
            cred = Path(creds) / f"{section}_{key}"
            # An empty credential file means "not used" (systemd needs every listed file).
            if cred.exists() and (text := cred.read_text().strip()):
                values[key] = text


def _format_errors(section: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_input=False):  # never echo values: they may be secrets
        loc = ".".join(str(p) for p in err["loc"]) or "(table)"
        out.append(f"[{section}] {loc}: {err['msg']}")
    return out


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read, override from the environment, validate. Raises ConfigError with every problem."""
    env = dict(os.environ) if env is None else env
    config_path = find_config(str(path) if path else None)
    data: dict[str, Any] = {}
    problems: list[str] = []
    if config_path is not None:
        try:
            data = tomllib.loads(config_path.read_text())
        except OSError as exc:
            raise ConfigError([f"{config_path}: cannot read: {exc.strerror}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{config_path}: TOML syntax: {exc}"]) from None
    installed = set(connector_registry.available())
    _apply_env(data, set(CORE_SECTIONS) | installed, env)

    built: dict[str, Any] = {"path": config_path, "connectors": {}, "secret_files": []}
    for section, values in data.items():
        if not isinstance(values, dict):
            problems.append(f"[{section}]: expected a table, got {type(values).__name__}")
            continue
        values = dict(values)
        if section in CORE_SECTIONS:
            model: type[BaseModel] = CORE_SECTIONS[section]
        else:
            try:
                model = connector_registry.load_class(section).Settings
            except UnknownConnector as exc:
                problems.append(f"[{section}]: unknown section: {exc}")
                continue
            except Exception as exc:  # a broken third-party connector must not hide others
                problems.append(f"[{section}]: connector failed to load: {exc}")
                continue
        _fill_secrets(section, model, values, problems, built["secret_files"])
        try:
            parsed = model.model_validate(values)
        except ValidationError as exc:
            problems.extend(_format_errors(section, exc))
            continue
        if section in CORE_SECTIONS:
            built[section] = parsed
        else:
            built["connectors"][section] = parsed
    if problems:
        where = f"{config_path}: " if config_path else ""
        raise ConfigError([where + p for p in problems])
    return Config(**built)
