"""`github`: GitHub issues through PyGithub (webhooks, polling, fetch, issue actions).

`syncd_sandbox.github.fake` is the local fake GitHub used by the tests and the demo sandbox.
"""

from connectors.github.connector import GitHubConnector, GitHubSettings

__all__ = ["GitHubConnector", "GitHubSettings"]
