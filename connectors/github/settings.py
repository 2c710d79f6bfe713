"""The `[github]` table of the config."""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from connectors.github.params import _check_repo
from syncd.sdk import ConnectorSettings


class GitHubSettings(ConnectorSettings):
    token: SecretStr | None = None  # required to run
    webhook_secret: SecretStr | None = None
    allow_unsigned: bool = False  # accept deliveries without a signature (never in production)
    repositories: list[str] = []  # "owner/repo", polled and searched for redeliveries
    create_missing_labels: bool = True
    base_url: str | None = "https://api.github.com"
    write_limit: int = 80  # content-creating requests per `write_period_seconds`
    write_period_seconds: float = 60.0
    finder_window_hours: float = 72.0  # how far back the finder lists our own issues

    @field_validator("repositories")
    @classmethod
    def _repos(cls, value: list[str]) -> list[str]:
        return [_check_repo(v) for v in value]
