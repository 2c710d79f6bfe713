"""The migrations build exactly the tables and indexes of syncd/store/schema.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from syncd.store.db import Store
from syncd.store.schema import metadata


def test_migrations_match_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
