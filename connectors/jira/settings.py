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
    # Jira Cloud limits by cost (a budget of points that refills; a write costs more than a
    # read) and by per-second bursts; beyond either, 429 + Retry-After. Atlassian does not
    # publish the numbers: set them to your site's (syncd keeps `rate_margin` under each).
    rate_limit_per_second: int = Field(default=10, ge=1)
    cost_budget: int = Field(default=100, ge=1)  # points per `cost_window_seconds`
    cost_window_seconds: float = Field(default=10.0, gt=0)
    write_cost: int = Field(default=2, ge=1)  # points a write costs (a read costs 1)
    rate_margin: float = Field(default=0.9, gt=0, le=1)
    page_size: int = Field(default=50, ge=1, le=5000)

    def poll_restriction(self) -> str | None:
        if self.jql_poll:
            return self.jql_poll
        if self.projects:
            return "project in (" + ", ".join(f'"{p}"' for p in self.projects) + ")"
        return None
