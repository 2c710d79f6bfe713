"""Durable state: SQLite (WAL) by default, PostgreSQL by URL; one set of SQL for both."""

from syncd.store.db import Store, open_store

__all__ = ["Store", "open_store"]
