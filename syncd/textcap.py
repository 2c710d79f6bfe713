"""Capping one-line texts (titles, subjects) to what the receiving API accepts.

A template can render a title longer than GitHub or Jira allow; the API would then refuse
the whole action. A title cut with an ellipsis still tells people what the issue is about.
"""

from __future__ import annotations

ELLIPSIS = "\u2026"
GITHUB_TITLE_MAX = 256  # GitHub refuses longer issue titles
JIRA_SUMMARY_MAX = 255  # Jira's summary field limit
EMAIL_SUBJECT_MAX = 255  # mail clients show far less; RFC 5322 allows 998 per line


def cap(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis (limit chars)."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS
