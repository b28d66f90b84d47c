"""The deny-list reader skips its query only while nothing was committed (`certbound.store.sqlite_commits`).

What must hold: a revocation committed by any connection of any process (through the store, through
a plain sqlite3 connection in another process, after a checkpoint that resets the WAL) is seen by
the very next `is_revoked`; the query is skipped only for a `jti` already found not revoked with no
commit since; any doubt about the header means the query runs.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certbound.store.interface import OpaqueToken
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store
from certbound.store.sqlite_commits import CommitMarker
from certbound.store.token_state import SqliteTokenState

LATER = datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "commits.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(f"sqlite:///{db_path}")
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
async def reader(store: SqlStore, db_path: Path) -> AsyncIterator[tuple[SqliteTokenState, list[str]]]:
    """The reader, and the statements its connection ran since the list was last emptied."""
    state = SqliteTokenState(str(db_path))
    statements: list[str] = []
    state._connection().set_trace_callback(statements.append)
    yield state, statements
    await state.close()


def _in_another_process(db_path: Path, sql: str) -> None:
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        " c.executescript(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", script, str(db_path), sql], check=True, timeout=60)


async def test_repeated_question_without_commits_runs_no_query(
    reader: tuple[SqliteTokenState, list[str]],
) -> None:
    state, statements = reader
    assert await state.is_revoked("j1") is False
    assert len(statements) == 1
    for _ in range(5):
        assert await state.is_revoked("j1") is False
    assert len(statements) == 1
    assert await state.is_revoked("j2") is False  # another jti: asked once
    assert len(statements) == 2


async def test_revocation_through_the_store_is_seen_at_once(
    store: SqlStore, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    state, statements = reader
    assert await state.is_revoked("j1") is False
    assert await state.is_revoked("j1") is False
    await store.revoke_token("j1", LATER)
    assert await state.is_revoked("j1") is True
    assert await state.is_revoked("j1") is True  # a revoked answer is never remembered
    assert len(statements) == 3


async def test_revocation_by_another_process_is_seen_at_once(
    db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    state, _ = reader
    assert await state.is_revoked("j1") is False
    _in_another_process(
        db_path, "INSERT INTO revoked_tokens (token_key, expires_at) VALUES ('j1', '2999-01-01 00:00:00')"
    )
    assert await state.is_revoked("j1") is True


async def test_any_commit_forgets_every_remembered_answer(
    store: SqlStore, db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    state, statements = reader
    for jti in ("a", "b"):
        assert await state.is_revoked(jti) is False
    assert await store.remember_jti("client", "unrelated", LATER) is True  # a write to another table
    statements.clear()
    assert await state.is_revoked("a") is False
    assert await state.is_revoked("b") is False
    assert len(statements) == 2


async def test_a_checkpoint_that_resets_the_wal_is_a_change(
    store: SqlStore, db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    state, _ = reader
    await store.revoke_token("other", LATER)
    assert await state.is_revoked("j1") is False
    _in_another_process(db_path, "PRAGMA wal_checkpoint(TRUNCATE)")
    _in_another_process(
        db_path, "INSERT INTO revoked_tokens (token_key, expires_at) VALUES ('j1', '2999-01-01 00:00:00')"
    )
    assert await state.is_revoked("j1") is True


async def test_a_rolled_back_revocation_is_none(
    db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    """SQLite may rewrite the header without a commit (here, on rollback): at worst a query more."""
    state, _ = reader
    assert await state.is_revoked("j1") is False
    _in_another_process(db_path, "BEGIN; INSERT INTO revoked_tokens VALUES ('j1', '2999-01-01'); ROLLBACK")
    assert await state.is_revoked("j1") is False
    assert await state.is_revoked("j1") is False


async def _opaque_token(store: SqlStore, digest: str) -> None:
    await store.create_client(Client("a", {"scope": "read"}))
    await store.add_opaque_token(OpaqueToken(digest, "a", {"exp": 1, "scope": "read"}, LATER))


async def test_an_opaque_row_is_read_again_only_after_a_commit(
    store: SqlStore, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    """An opaque token's row is remembered like a jti not revoked: no query while nothing was
    committed, and its revocation (a commit) is seen by the very next question."""
    state, statements = reader
    await _opaque_token(store, "ab" * 32)
    statements.clear()
    first = await state.opaque_token("ab" * 32)
    assert first is not None
    assert first.revoked is False
    for _ in range(5):
        assert await state.opaque_token("ab" * 32) == first
    assert len(statements) == 1
    assert await state.opaque_token("cd" * 32) is None  # an unknown token is asked every time
    assert await state.opaque_token("cd" * 32) is None
    assert len(statements) == 3
    assert await store.revoke_opaque_token("ab" * 32) is True
    found = await state.opaque_token("ab" * 32)
    assert found is not None
    assert found.revoked is True


async def test_an_opaque_row_deleted_by_another_process_is_gone_at_once(
    store: SqlStore, db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    state, _ = reader
    await _opaque_token(store, "ab" * 32)
    assert await state.opaque_token("ab" * 32) is not None
    _in_another_process(db_path, "DELETE FROM opaque_tokens")
    assert await state.opaque_token("ab" * 32) is None


async def test_the_remembered_set_is_bounded(
    reader: tuple[SqliteTokenState, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, statements = reader
    monkeypatch.setattr(SqliteTokenState, "MAX_REMEMBERED", 3)
    for jti in ("a", "b", "c", "d"):
        assert await state.is_revoked(jti) is False
    assert len(state._not_revoked) <= 3
    statements.clear()
    assert await state.is_revoked("d") is False
    assert statements == []


async def test_without_wal_every_question_is_a_query(tmp_path: Path) -> None:
    path = tmp_path / "rollback-journal.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE revoked_tokens (token_key TEXT PRIMARY KEY, expires_at TEXT)")
    conn.close()
    state = SqliteTokenState(str(path))
    statements: list[str] = []
    state._connection().set_trace_callback(statements.append)
    try:
        assert state._marker is None
        for _ in range(3):
            assert await state.is_revoked("j1") is False
        assert len(statements) == 3
    finally:
        await state.close()


def _header(path: Path, first: bytes, second: bytes) -> CommitMarker:
    """A marker over a file holding the given two header copies (the layout of a ``-shm``)."""
    path.write_bytes(first + second + bytes(4096 - len(first) - len(second)))
    with path.open("rb") as file:
        return CommitMarker(mmap.mmap(file.fileno(), 4096, mmap.MAP_SHARED, mmap.PROT_READ))


def test_a_header_being_written_or_never_written_is_no_marker(tmp_path: Path) -> None:
    valid = bytes(12) + b"\x01" + bytes(35)
    other = bytes(8) + b"\x02" + bytes(3) + b"\x01" + bytes(35)  # another iChange
    assert _header(tmp_path / "same", valid, valid).current() == valid
    assert _header(tmp_path / "torn", other, valid).current() is None
    assert _header(tmp_path / "zero", bytes(48), bytes(48)).current() is None


def _shm_locks(shm: Path) -> list[str]:
    """This process's POSIX locks on `shm`, as /proc/locks lists them."""
    inode = f":{shm.stat().st_ino} "
    return [line for line in Path("/proc/locks").read_text().splitlines()
            if inode in line and str(os.getpid()) in line.split()]  # fmt: skip


async def test_the_marker_keeps_sqlites_locks(
    db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    """POSIX drops a process's locks on a file when any descriptor of it is closed: the marker must
    never close one, or the next process to open the database rebuilds the wal-index under us."""
    state, _ = reader
    shm = Path(f"{db_path}-shm")
    before = _shm_locks(shm)
    assert before  # SQLite's "in use" lock
    assert await state.is_revoked("j1") is False
    assert state._marker is not None
    await state.close()
    assert _shm_locks(shm) == before


_WORKER = """
import asyncio, sys, time
from datetime import UTC, datetime, timedelta
from certbound.store.sql import open_store

async def main() -> None:
    store = open_store(f"sqlite:///{sys.argv[1]}")
    await store.migrate()
    reader = store.token_state()
    later = datetime.now(UTC) + timedelta(hours=1)
    n, end = 0, None
    while end is None or time.time() < end:
        assert await reader.is_revoked(f"j{n}") is False
        await store.revoke_token(f"j{n}", later)
        assert await reader.is_revoked(f"j{n}") is True
        await store.generation()
        n += 1
        if end is None:  # the database exists and the reader holds -shm: let the test go on
            print("ready", flush=True)
            end = time.time() + 2.5
        await asyncio.sleep(0.001)
    await reader.close()
    await store.close()
    print("revoked", n)

asyncio.run(main())
"""


async def test_another_process_opening_the_database_does_not_break_a_worker(tmp_path: Path) -> None:
    """A worker revoking and introspecting while a CLI command (or the sqlite3 shell) opens the
    database: with the locks dropped, that process rebuilt the wal-index and the worker died of
    SIGBUS."""
    db_path = tmp_path / "worker.db"  # the worker is this database's only user until the CLI comes
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    ready = await asyncio.to_thread(worker.stdout.readline)  # no fixed wait: a busy machine imports slowly
    assert ready == "ready\n", worker.communicate(timeout=60)[1][-2000:]
    _in_another_process(db_path, "SELECT count(*) FROM revoked_tokens")
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err[-2000:]
    assert out.startswith("revoked ")


async def test_a_stale_shm_beside_a_symlink_is_not_the_marker(tmp_path: Path) -> None:
    """SQLite names its wal-index after the file the path resolves to: a left-over ``-shm`` beside
    a symlink is never the one mapped."""
    real, link = tmp_path / "volume.db", tmp_path / "app.db"
    conn = sqlite3.connect(real, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE revoked_tokens (token_key TEXT PRIMARY KEY, expires_at TEXT)")
    conn.execute("INSERT INTO revoked_tokens VALUES ('other', 'x')")
    Path(f"{link}-shm").write_bytes(Path(f"{real}-shm").read_bytes())  # a copy, frozen from now on
    link.symlink_to(real)
    state = SqliteTokenState(str(link))
    try:
        assert await state.is_revoked("j1") is False
        conn.execute("INSERT INTO revoked_tokens VALUES ('j1', 'x')")
        assert await state.is_revoked("j1") is True
    finally:
        conn.close()
        await state.close()


async def test_the_database_cannot_leave_wal_while_the_reader_is_open(
    db_path: Path, reader: tuple[SqliteTokenState, list[str]]
) -> None:
    """What keeps the marker the live one: no other connection can switch the journal mode."""
    state, _ = reader
    assert await state.is_revoked("j1") is False
    with pytest.raises(subprocess.CalledProcessError):
        _in_another_process(db_path, "PRAGMA journal_mode = DELETE")
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
