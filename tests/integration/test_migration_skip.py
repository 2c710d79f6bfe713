"""A store already at the newest migration opens without alembic (issue 17: alembic, mako
and pygments are about 10 MB of an idle daemon's memory); an older store is still migrated,
by the daemon in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from syncd.migrations.head import head_revision
from syncd.store.db import MIGRATIONS, StoreUnreadable, at_head, open_store, upgrade

ROOT = Path(__file__).resolve().parents[2]


def _alembic_head() -> str | None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config).get_current_head()


def test_the_head_read_without_alembic_is_alembics() -> None:
    assert head_revision() is not None
    assert head_revision() == _alembic_head()


def _imports_alembic_when_opening(url: str) -> bool:
    code = (
        "import sys; from syncd.store.db import open_store; "
        f"open_store({url!r}).dispose(); print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip() == "True"


def test_a_store_at_head_opens_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    assert _imports_alembic_when_opening(url) is True  # new: migrated
    assert _imports_alembic_when_opening(url) is False  # at head: nothing to do


def test_a_store_behind_head_is_still_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    store = open_store(url, migrate=False)
    upgrade(store, "0001")
    assert not at_head(store)
    store.dispose()
    store = open_store(url)
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == _alembic_head()
    assert at_head(store)
    store.dispose()


def _imports_alembic_when_opening_in_child(url: str) -> tuple[bool, bool]:
    code = (
        "import sys; from syncd.store.db import at_head, open_store; "
        f"s = open_store({url!r}, migrate_in_child=True); "
        "print('alembic' in sys.modules, at_head(s)); s.dispose()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported, migrated = out.stdout.split()
    return imported == "True", migrated == "True"


def test_the_daemon_migrates_a_new_store_in_a_child_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    assert _imports_alembic_when_opening_in_child(url) == (False, True)
    store = open_store(url, migrate=False)
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == _alembic_head()
    store.dispose()


def test_a_store_the_child_cannot_migrate_fails_as_before(tmp_path: Path) -> None:
    path = tmp_path / "syncd.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnreadable, match="is damaged"):
        open_store(f"sqlite:///{path}", migrate_in_child=True)
