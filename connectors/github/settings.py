"""The `[github]` table of the config."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from connectors.github.params import _check_repo
from syncd.sdk import ConnectorSettings


class GitHubSettings(ConnectorSettings):
    token: SecretStr | None = None  # required to run
    webhook_secret: SecretStr | None = None
    allow_unsigned: bool = False  # accept deliveries without a signature (never in production)
    repositories: list[str] = []  # "owner/repo", polled and searched for redeliveries
    create_missing_labels: bool = True
    base_url: str | None = "https://api.github.com"
    # GitHub's documented limits (syncd.governor keeps `rate_margin` under each):
    requests_per_hour: int = Field(5000, ge=1)  # primary limit, every request of the token
    write_limit: int = Field(80, ge=1)  # secondary: content-creating requests per period
    write_period_seconds: float = Field(60.0, gt=0)
    writes_per_hour: int = Field(500, ge=1)  # secondary: content-creating requests an hour
    rate_margin: float = Field(0.9, gt=0, le=1)  # share of each limit syncd uses
    finder_window_hours: float = 72.0  # how far back the finder lists our own issues

    @field_validator("repositories")
    @classmethod
    def _repos(cls, value: list[str]) -> list[str]:
        return [_check_repo(v) for v in value]
