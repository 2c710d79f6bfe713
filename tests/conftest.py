"""Shared fixtures: a store on SQLite (always) and on PostgreSQL (when
SYNCD_TEST_DATABASE_URL names one), and a small engine around the localdb connector."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from syncd.store.db import Store, open_store

PG_URL = os.environ.get("SYNCD_TEST_DATABASE_URL", "")

# The files the tests write stand for an operator's config, mappings and secrets, which
# syncd refuses when others may write them (syncd.permissions): they are written as under
# the usual umask 022, whatever the developer's own (Ubuntu gives its users 002).
os.umask(0o022)


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _psycopg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: set SYNCD_TEST_DATABASE_URL to run (e.g. postgresql://.../test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.dispose()


# Figures that tests measure (crash counts, takeover times) are printed after the run, so
# they show in CI's output without `-s`.
FIGURES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


@pytest.fixture
def report_figure(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.config.stash[FIGURES].append


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("figures measured by the tests")
        for line in lines:
            terminalreporter.write_line(line)
