"""The SQLite store's files on disk: private modes (issue 14, item 11), and a damaged file
named with its recovery steps instead of a traceback (item 12)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from syncd.store.db import open_store
from tests.integration.daemon_helpers import ROOT, free_port, write_daemon_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a shell outside systemd usually has
    yield
    os.umask(old)


def test_a_new_store_is_private_with_its_wal_and_shm(tmp_path: Path, usual_umask: None) -> None:
    db = tmp_path / "state" / "syncd.sqlite3"
    store = open_store(f"sqlite:///{db}")
    try:
        with store.tx() as conn:  # a write: the -wal and -shm files exist now
            conn.execute(
                text("INSERT INTO state (scope, key, value, updated_at) VALUES ('t', 'k', '1', 0)")
            )
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            files = {p.name: mode(p) for p in db.parent.iterdir()}
        assert mode(db.parent) == 0o700
        assert {"syncd.sqlite3", "syncd.sqlite3-wal", "syncd.sqlite3-shm"} <= set(files)
        assert files == dict.fromkeys(files, 0o600)
    finally:
        store.dispose()


def test_an_existing_store_with_wide_modes_is_narrowed(tmp_path: Path, usual_umask: None) -> None:
    db = tmp_path / "syncd.sqlite3"
    open_store(f"sqlite:///{db}").dispose()
    db.chmod(0o644)
    (tmp_path / "syncd.sqlite3-wal").write_bytes(b"")
    (tmp_path / "syncd.sqlite3-wal").chmod(0o666)
    open_store(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600
    assert (
        not (tmp_path / "syncd.sqlite3-wal").exists()
        or mode(tmp_path / "syncd.sqlite3-wal") == 0o600
    )


def _damage(db: Path, how: str) -> None:
    if how == "garbage":
        db.write_bytes(b"this is not a database\n" * 500)
        return
    # a real store whose schema page is overwritten past the 100-byte header
    open_store(f"sqlite:///{db}").dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["garbage", "schema-page"])
@pytest.mark.parametrize("command", [["run"], ["status"], ["actions", "list"]])
def test_a_damaged_store_gives_its_path_and_recovery_steps(
    tmp_path: Path, how: str, command: list[str]
) -> None:
    config = write_daemon_config(tmp_path, free_port(), secret="s")
    db = tmp_path / "state" / "syncd.sqlite3"
    db.parent.mkdir(mode=0o700)
    _damage(db, how)
    before = db.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", *command, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"SQLite store {db} is damaged" in done.stderr
    assert "OPERATIONS.md" in done.stderr and ".recover" in done.stderr
    assert "Traceback" not in done.stderr and "uncaught" not in done.stderr
    assert db.read_bytes() == before  # nothing written over what may be salvaged
