"""Writers of two processes on one SQLite file queue on one lock (syncd.store.writelock):
while one process is in a write transaction, the other's writers wait for it, and start
as soon as it commits, without SQLite's busy handler."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from sqlalchemy import text

from syncd.store.db import open_store


def test_a_write_in_another_process_holds_this_processes_writers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.sqlite3'}"
    store = open_store(url)
    store.share_writes_across_processes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""\
                import sys
                from sqlalchemy import text
                from syncd.store.db import open_store
                store = open_store({url!r}, migrate=False)
                store.share_writes_across_processes()
                with store.tx() as conn:
                    conn.execute(text("INSERT INTO state (scope, key, value, updated_at) "
                                      "VALUES ('t', 'holder', '1', 1)"))
                    print("holding", flush=True)
                    sys.stdin.readline()  # until the test lets go
                print("released", flush=True)
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        entered = threading.Event()

        def write() -> None:
            with store.tx() as conn:
                entered.set()
                conn.execute(
                    text(
                        "INSERT INTO state (scope, key, value, updated_at) "
                        "VALUES ('t', 'waiter', '2', 2)"
                    )
                )

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        assert not entered.wait(0.5)  # queued behind the other process's transaction
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert entered.wait(10)
        writer.join(timeout=10)
        with store.engine.connect() as conn:
            keys = sorted(r[0] for r in conn.execute(text("SELECT key FROM state WHERE scope='t'")))
        assert keys == ["holder", "waiter"]
    finally:
        holder.kill()
        holder.wait()
        store.dispose()


def test_the_lock_is_shared_private_and_let_go_when_its_holder_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.sqlite3'}"
    store = open_store(url)
    store.share_writes_across_processes()
    lock_file = tmp_path / "syncd.sqlite3.write-lock"
    assert lock_file.stat().st_mode & 0o777 == 0o600
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""\
                import time
                from syncd.store.writelock import ProcessWriteLock
                lock = ProcessWriteLock({str(lock_file)!r})
                lock.__enter__()
                print("holding", flush=True)
                time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    done = threading.Event()

    def write() -> None:
        with store.tx() as conn:
            conn.execute(text("SELECT 1"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    # The other process holds the shared lock alone (no SQLite transaction): this one's
    # writer waits for it all the same.
    assert not done.wait(0.5)
    holder.kill()  # kill -9 inside the lock
    holder.wait()
    assert done.wait(30)  # not left waiting for a dead process (the kernel let go)
    store.dispose()
