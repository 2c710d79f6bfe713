"""Parameter models of the GitHub actions (what a mapping file may write under `github.*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from syncd.sdk import GITHUB_TITLE_MAX, ParamsModel, cap


def _check_repo(value: str) -> str:
    owner, _, name = value.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"repository must be 'owner/repo', got {value!r}")
    return value


class CreateIssueParams(ParamsModel):
    repo: str
    title: str
    body: str = ""
    labels: list[str] = []
    assignees: list[str] = []
    milestone: str | int | None = None  # a milestone's title or number
    allow_mentions: bool = False

    _repo = field_validator("repo")(_check_repo)

    @field_validator("title")
    @classmethod
    def _fits(cls, value: str) -> str:
        return cap(value, GITHUB_TITLE_MAX)


class CommentParams(ParamsModel):
    repo: str
    issue_number: int
    body: str
    allow_mentions: bool = False

    _repo = field_validator("repo")(_check_repo)


class AddLabelsParams(ParamsModel):
    repo: str
    issue_number: int
    labels: list[str]

    _repo = field_validator("repo")(_check_repo)


class CloseIssueParams(ParamsModel):
    repo: str
    issue_number: int
    state_reason: Literal["completed", "not_planned", "duplicate"] | None = None

    _repo = field_validator("repo")(_check_repo)
