"""`jira`: Jira Cloud (REST v3) through python-jira, and its local fake."""

from connectors.jira.connector import JiraConnector
from connectors.jira.settings import JiraSettings

__all__ = ["JiraConnector", "JiraSettings"]
