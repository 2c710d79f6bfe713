"""The `[jira]` table of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from syncd.sdk import ConnectorSettings


class JiraSettings(ConnectorSettings):
    # The Cloud site, e.g. https://2i2c.atlassian.net (the fake's URL in tests and the demo).
    base_url: str
    email: str = ""
    api_token: SecretStr | None = None  # required to run
    # "basic": email + API token (Jira Cloud); "bearer": a personal access token / OAuth token.
    auth: Literal["basic", "bearer"] = "basic"
    webhook_secret: SecretStr | None = None
    allow_unsigned: bool = False  # accept deliveries without a signature (never in production)
    # Restriction for polling, e.g. `project in (OPS, CLI)`; built from `projects` when unset.
    jql_poll: str | None = None
    projects: list[str] = []
    marker_label_prefix: str = "syncd-"
    # JQL dates have minute granularity: each poll re-reads this many minutes before the cursor.
    poll_overlap_minutes: int = Field(default=3, ge=1)
    # Client-side limit; Jira Cloud's burst limits are per endpoint, 429 + Retry-After beyond.
    rate_limit_per_second: int = Field(default=10, ge=1)
    page_size: int = Field(default=50, ge=1, le=5000)

    def poll_restriction(self) -> str | None:
        if self.jql_poll:
            return self.jql_poll
        if self.projects:
            return "project in (" + ", ".join(f'"{p}"' for p in self.projects) + ")"
        return None
