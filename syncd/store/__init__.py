"""Durable state: SQLite (WAL) by default, PostgreSQL by URL; one set of SQL for both."""

from syncd.store.db import Store, open_store
from syncd.store.schema import metadata

__all__ = ["Store", "metadata", "open_store"]
