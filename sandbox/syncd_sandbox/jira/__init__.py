"""The local fake of Jira (see syncd_sandbox)."""
