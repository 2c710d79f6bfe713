"""The `[airtable]` table of the config."""

from __future__ import annotations

from pydantic import Field, SecretStr

from syncd.sdk import ConnectorSettings

DEFAULT_BASE_URL = "https://api.airtable.com"


class AirtableSettings(ConnectorSettings):
    token: SecretStr | None = None  # required to run
    base_id: str = Field(pattern=r"^app[A-Za-z0-9]+$")
    # object type alias -> table name or id, e.g. {"lead": "Leads", "hub": "Active Hubs"}
    tables: dict[str, str] = Field(min_length=1)
    base_url: str | None = DEFAULT_BASE_URL
    rate_limit_per_second: int = Field(5, ge=1)  # Airtable's documented limit, per base
    rate_margin: float = Field(0.9, gt=0, le=1)  # share of the limit syncd uses
    last_modified_field: str | None = "Last Modified"
    last_modified_fields: dict[str, str] = {}  # per alias, overrides last_modified_field
    poll_tables: list[str] | None = None  # aliases polled by default (None: all)
    poll_overlap_seconds: float = Field(60.0, ge=0)
    page_size: int = Field(100, ge=1, le=100)
    allow_unsigned: bool = False  # accept pings without a MAC (never in production)
