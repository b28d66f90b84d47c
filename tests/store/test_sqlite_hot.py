"""The SQLite fast path for the replay-cache and deny-list inserts (`certbound.store.sqlite_hot`).

What it must keep from the SQLAlchemy path: one committed atomic insert each, visible to every
connection and process at once, the same stored values, the same exceptions. What it adds: the
event loop is never blocked by another connection's write lock, and the WAL stays bounded although
this connection never checkpoints itself.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from certbound.store.schema import assertion_jti
from certbound.store.sql import SqlStore, open_store
from certbound.store.sqlite_hot import SqliteHotWriter
from certbound.store.token_state import SqliteTokenState
from tests.store import _workers

LATER = datetime.now(UTC) + timedelta(hours=1)
#: How long the loop may go without running other tasks while a write waits for a lock. The design
#: bound is one failed try (microseconds); a write that blocked would stall it for the whole lock
#: wait (300 ms and more in these tests), so half of that still tells the two apart, with room for a
#: machine loaded by other suites (66 ms seen with 50 ms as the bound).
LOOP_STALL_BOUND = 0.15


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(f"sqlite:///{db_path}")
    await opened.migrate()
    yield opened
    await opened.close()


@contextmanager
def write_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock until the block ends (then it commits)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        if conn.in_transaction:
            conn.execute("COMMIT")
    finally:
        conn.close()


class LoopWatch:
    """Measures the longest time the event loop went without running this ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.longest = max(self.longest, time.perf_counter() - started - 0.001)

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_replay_refused_across_two_stores(store: SqlStore, db_path: Path) -> None:
    other = open_store(f"sqlite:///{db_path}")
    try:
        assert await store.remember_jti("c1", "j1", LATER) is True
        assert await other.remember_jti("c1", "j1", LATER) is False
        assert await other.remember_jti("c1", "j2", LATER) is True
        assert await store.remember_jti("c1", "j2", LATER) is False
    finally:
        await other.close()


async def test_revocation_visible_to_a_reader_at_once(store: SqlStore, db_path: Path) -> None:
    reader = SqliteTokenState(str(db_path))
    try:
        assert await reader.is_revoked("t1") is False  # its connection is open before the write
        await store.revoke_token("t1", LATER)
        assert await reader.is_revoked("t1") is True
    finally:
        await reader.close()


async def test_writes_are_committed_for_other_processes(store: SqlStore, db_path: Path) -> None:
    await store.revoke_token("t-proc", LATER)
    assert await store.remember_jti("c1", "j-proc", LATER) is True
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); q = lambda s: c.execute(s).fetchone()[0];"
        "print(q(\"SELECT count(*) FROM revoked_tokens WHERE token_key = 't-proc'\"),"
        " q(\"SELECT count(*) FROM assertion_jti WHERE jti = 'j-proc'\"))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(db_path)], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["1", "1"]


async def test_stored_exactly_as_the_engine_stores(store: SqlStore) -> None:
    """Same text in the column (purge_expired compares it as text), same value read back."""
    expires = datetime(2031, 5, 6, 9, 8, 7, 123, tzinfo=timezone(timedelta(hours=2)))
    assert await store.remember_jti("hot", "j", expires) is True
    async with store.engine.begin() as conn:
        await conn.execute(assertion_jti.insert().values(client_id="engine", jti="j", expires_at=expires))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT client_id, expires_at FROM assertion_jti"))).all()
        raw: dict[str, str] = {row[0]: row[1] for row in rows}
        typed = (await conn.execute(select(assertion_jti.c.expires_at))).scalars().all()
    assert raw == {"hot": "2031-05-06 07:08:07.000123", "engine": "2031-05-06 07:08:07.000123"}
    assert typed == [expires, expires]


async def test_lock_held_elsewhere_waits_without_blocking_the_loop(store: SqlStore, db_path: Path) -> None:
    assert await store.remember_jti("c1", "warm", LATER) is True  # connection open, path warm
    with LoopWatch() as watch, write_lock(db_path):
        started = time.perf_counter()
        write = asyncio.create_task(store.remember_jti("c1", "j1", LATER))
        await asyncio.sleep(0.3)
        assert not write.done()  # still waiting for the lock, not failed
    assert await asyncio.wait_for(write, 5) is True
    waited = time.perf_counter() - started
    assert watch.longest < LOOP_STALL_BOUND, f"event loop blocked for {watch.longest * 1000:.1f} ms"
    assert 0.3 <= waited < 2
    assert await store.remember_jti("c1", "j1", LATER) is False


async def test_lock_outlasting_the_busy_timeout_raises_like_the_engine(
    store: SqlStore, db_path: Path
) -> None:
    writer = SqliteHotWriter.for_engine(store.engine, busy_timeout_ms=300)
    try:
        with LoopWatch() as watch, write_lock(db_path):
            started = time.perf_counter()
            with pytest.raises(OperationalError, match="database is locked"):
                await writer.remember_jti("c1", "j1", LATER)
            waited = time.perf_counter() - started
        assert watch.longest < LOOP_STALL_BOUND, f"event loop blocked for {watch.longest * 1000:.1f} ms"
        assert 0.3 <= waited < 2
        assert await writer.remember_jti("c1", "j1", LATER) is True  # nothing was written before
    finally:
        await writer.close()


async def test_racing_writers_one_winner_each(store: SqlStore, db_path: Path) -> None:
    """Two writers (two connections, as two workers have) racing under a held lock."""
    other = SqliteHotWriter.for_engine(store.engine)
    jtis = [f"race-{i}" for i in range(30)]
    try:
        with write_lock(db_path):
            racing = asyncio.gather(*(w.remember_jti("c1", j, LATER) for j in jtis for w in (store, other)))
            await asyncio.sleep(0.05)
        outcomes = await asyncio.wait_for(racing, 5)
    finally:
        await other.close()
    assert sum(outcomes) == len(jtis)
    assert all(outcomes[2 * i] != outcomes[2 * i + 1] for i in range(len(jtis)))


async def test_errors_are_the_engines_exceptions(tmp_path: Path) -> None:
    unmigrated = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"):
            await unmigrated.remember_jti("c1", "j1", LATER)
        with pytest.raises(OperationalError, match="no such table"):
            await unmigrated.revoke_token("t1", LATER)
    finally:
        await unmigrated.close()


async def test_wal_stays_bounded(store: SqlStore, db_path: Path) -> None:
    """The loop connection never checkpoints itself; the writer's own checkpoints must keep the
    WAL from growing. 6,000 back-to-back inserts without any checkpoint make a WAL of ~85 MB; with
    them it starts over every cycle and its file stays at its high-water mark (~3-8 MB here)."""
    writer = SqliteHotWriter.for_engine(store.engine)
    writer.CHECKPOINT_EVERY = 100
    try:
        for i in range(6000):
            assert await writer.remember_jti("c1", f"j{i}", LATER) is True
            if i % 10 == 0:
                await asyncio.sleep(0)  # requests would let the loop run between writes
        assert os.path.getsize(f"{db_path}-wal") < 16 * 1024 * 1024
    finally:
        await writer.close()
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(assertion_jti.c.jti))).all()) == 6000


async def test_concurrent_writers_through_checkpoints(store: SqlStore) -> None:
    """Writes arriving while a checkpoint runs wait for it and then all land, exactly once."""
    writer = SqliteHotWriter.for_engine(store.engine)
    writer.CHECKPOINT_EVERY = 50

    async def client(k: int) -> list[bool]:
        won = []
        for i in range(100):
            won.append(await writer.remember_jti(f"c{k}", f"j{i}", LATER))
            await asyncio.sleep(0)
        return won

    try:
        results = await asyncio.wait_for(asyncio.gather(*(client(k) for k in range(20))), 30)
        assert all(all(won) for won in results)
        assert await writer.remember_jti("c3", "j7", LATER) is False
    finally:
        await writer.close()
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(assertion_jti.c.jti))).all()) == 2000


def _open_files(db_path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(db_path)):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_close_releases_files_and_thread_and_can_reopen(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}")
    await store.migrate()
    try:
        for i in range(300):  # past CHECKPOINT_EVERY: the thread has a connection of its own too
            await store.revoke_token(f"t{i}", LATER)
        assert _open_files(db_path)
    finally:
        await store.close()
    assert _open_files(db_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("certbound-sqlite")]

    assert await store.remember_jti("c1", "after-close", LATER) is True  # like the engine: reopens
    await store.close()
    assert _open_files(db_path) == []


async def test_generation_is_read_on_the_loop_connection(store: SqlStore, db_path: Path) -> None:
    """Polled twice a second by every worker: a plain read, not the engine's ~1 ms round."""
    first = await store.generation()
    hot = store._hot
    assert hot is not None
    assert hot._session is not None
    assert hot._session.loop_conn is not None
    statements: list[str] = []
    hot._session.loop_conn.set_trace_callback(statements.append)
    with write_lock(db_path) as other:  # a writer elsewhere does not hold the read back
        other.execute("UPDATE store_generation SET value = value + 5 WHERE id = 1")
        assert await store.generation() == first  # not committed yet
    assert await store.generation() == first + 5
    assert len(statements) == 2
    assert all("store_generation" in s for s in statements)


async def test_generation_row_missing_is_the_engines_error(store: SqlStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DELETE FROM store_generation")
    conn.close()
    with pytest.raises(RuntimeError, match="store_generation row missing"):
        await store.generation()


def _statements(writer: SqliteHotWriter) -> list[str]:
    """Every statement the writer's loop connection runs from now on (SQLite's own trace)."""
    session = writer._session
    assert session is not None
    assert session.loop_conn is not None
    seen: list[str] = []
    session.loop_conn.set_trace_callback(seen.append)
    return seen


async def test_writes_of_one_loop_iteration_commit_together(store: SqlStore) -> None:
    """Group commit: writes queued while the loop runs other requests share one transaction, and
    each caller still gets its own answer; a lone write stays one autocommit INSERT."""
    writer = SqliteHotWriter.for_engine(store.engine)
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True  # connection open
        seen = _statements(writer)
        outcomes = await asyncio.gather(
            *(writer.remember_jti("c1", f"g{i}", LATER) for i in range(10)),
            writer.revoke_token("t1", LATER),
            writer.remember_jti("c1", "warm", LATER),  # already there: not inserted, not an error
        )
        assert outcomes == [True] * 10 + [None, False]
        assert [s.split()[0] for s in seen] == ["BEGIN", *["INSERT"] * 12, "COMMIT"]
        seen.clear()
        assert await writer.remember_jti("c1", "alone", LATER) is True
        assert [s.split()[0] for s in seen] == ["INSERT"]
    finally:
        await writer.close()
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(assertion_jti.c.jti))).all()) == 12


async def test_one_winner_within_a_group(store: SqlStore, db_path: Path) -> None:
    outcomes = await asyncio.gather(*(store.remember_jti("c1", "same", LATER) for _ in range(8)))
    assert sorted(outcomes) == [False] * 7 + [True]


async def test_a_failing_write_fails_only_its_caller(store: SqlStore) -> None:
    """A statement that fails undoes its group's transaction; each write is then tried alone, so
    the others are committed and only the failing caller gets the engine's error."""
    writer = SqliteHotWriter.for_engine(store.engine)
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        seen = _statements(writer)
        outcomes = await asyncio.gather(
            writer.remember_jti("c1", "before", LATER),
            writer.remember_jti("c1", "broken", None),  # type: ignore[arg-type]  # NOT NULL refuses it
            writer.remember_jti("c1", "after", LATER),
            return_exceptions=True,
        )
        assert outcomes[0] is True
        assert outcomes[2] is True
        assert isinstance(outcomes[1], IntegrityError), outcomes[1]
        assert "NOT NULL" in str(outcomes[1])
        assert "ROLLBACK" in [s.split()[0] for s in seen]
    finally:
        await writer.close()
    async with store.engine.connect() as conn:
        stored = {row[0] for row in (await conn.execute(select(assertion_jti.c.jti))).all()}
    assert stored == {"warm", "before", "after"}


async def test_close_waits_for_queued_writes(store: SqlStore, db_path: Path) -> None:
    """Writes queued behind another connection's lock still land when the store is closed meanwhile."""
    writer = SqliteHotWriter.for_engine(store.engine)
    assert await writer.remember_jti("c1", "warm", LATER) is True
    with write_lock(db_path):
        writes = [asyncio.create_task(writer.remember_jti("c1", f"q{i}", LATER)) for i in range(5)]
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0.1)
        assert not closing.done()  # waiting for the queued writes, not dropping them
    await asyncio.wait_for(closing, 5)
    assert [w.result() for w in writes] == [True] * 5
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(assertion_jti.c.jti))).all()) == 6


# -- group commit under attack: several processes, a reader's commit marker, faults ------------------


async def test_replay_refused_across_processes_writing_in_groups(tmp_path: Path) -> None:
    """Four worker processes each submit the same 600 jtis, 60 at a time (so each worker commits
    them in groups, racing the others' groups): every jti is accepted exactly once, overall."""
    url = f"sqlite:///{tmp_path / 'groups.db'}"
    setup = open_store(url)
    await setup.migrate()
    await setup.close()
    jtis = [f"j{i}" for i in range(600)]
    extras: list[tuple[Any, ...]] = []
    for seed in range(4):
        shuffled = random.Random(seed).sample(jtis, len(jtis))
        extras.append(("c1", [shuffled[i : i + 60] for i in range(0, len(shuffled), 60)], LATER))
    reports = _workers.run_each(_workers.remember_jtis_at_once, url, extras, timeout=120)
    won = Counter(jti for report in reports for jti in report)
    assert sorted(won) == sorted(jtis)
    assert set(won.values()) == {1}


_REVOKER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from certbound.store.sql import open_store

async def main():
    store = open_store(sys.argv[1])
    later = datetime.now(UTC) + timedelta(hours=1)
    try:
        for line in sys.stdin:  # each line: keys to revoke at once (one group), then "done"
            await asyncio.gather(*(store.revoke_token(key, later) for key in line.split()))
            print("done", flush=True)
    finally:
        await store.close()

asyncio.run(main())
"""


async def test_group_of_revocations_ends_a_readers_remembered_answers(db_path: Path, store: SqlStore) -> None:
    """The reader in this process remembers "not revoked" under the WAL-index header; another
    process revokes the same tokens in one group (past several checkpoints and WAL restarts): once
    that returns, every one of them is revoked for the reader."""
    reader = SqliteTokenState(str(db_path))
    child = subprocess.Popen(
        [sys.executable, "-c", _REVOKER, f"sqlite:///{db_path}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        for group in range(30):
            keys = [f"t{group}-{i}" for i in range(40)]
            assert [await reader.is_revoked(key) for key in keys] == [False] * 40
            assert [await reader.is_revoked(key) for key in keys] == [False] * 40  # remembered
            child.stdin.write(" ".join(keys) + "\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "done"
            assert [await reader.is_revoked(key) for key in keys] == [True] * 40, group
        child.stdin.close()
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
        await reader.close()


class _BusyAtCommit:
    """The loop connection, whose next COMMITs fail with SQLITE_BUSY and leave the transaction
    open, as SQLite does: a fault WAL mode does not produce on demand, so the one stand-in here."""

    def __init__(self, conn: sqlite3.Connection, failures: int) -> None:
        self._conn = conn
        self.failures = failures

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.failures > 0:
            self.failures -= 1
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = 5  # SQLITE_BUSY
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


async def test_busy_at_commit_rolls_back_and_retries_the_group(store: SqlStore) -> None:
    writer = SqliteHotWriter.for_engine(store.engine)
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        session = writer._session
        assert session is not None
        assert session.loop_conn is not None
        faulty = _BusyAtCommit(session.loop_conn, failures=3)
        session.loop_conn = faulty  # type: ignore[assignment]
        outcomes = await asyncio.gather(*(writer.remember_jti("c1", f"j{i % 5}", LATER) for i in range(10)))
        assert faulty.failures == 0
        assert outcomes == [True] * 5 + [False] * 5
        assert not faulty.in_transaction
        assert await writer.generation() is not None
    finally:
        await writer.close()
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(assertion_jti.c.jti))).all()) == 6


def test_a_loop_that_ended_before_its_flusher_ran_leaves_the_writer_usable(db_path: Path) -> None:
    """asyncio.run cancels what is left when its coroutine returns; a flusher cancelled before its
    first step never runs its own clean-up. The next loop's writes must still be committed (not
    left waiting for that dead flusher), and close() must not wait on it."""

    async def setup() -> SqliteHotWriter:
        store = open_store(f"sqlite:///{db_path}")
        await store.migrate()
        writer = SqliteHotWriter.for_engine(store.engine)
        await store.close()
        return writer

    writer = asyncio.run(setup())

    in_flight: list[asyncio.Future[bool]] = []

    async def first() -> None:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        # queued now, its flusher due in the next iteration, which never comes: the loop stops
        in_flight.append(asyncio.ensure_future(writer.remember_jti("c1", "in-flight", LATER)))

    asyncio.run(first())
    assert in_flight[0].cancelled()

    async def second() -> bool:
        try:
            return await asyncio.wait_for(writer.remember_jti("c1", "next", LATER), 10)
        finally:
            await writer.close()

    assert asyncio.run(second()) is True


async def test_a_value_sqlite3_cannot_bind_fails_only_its_caller(store: SqlStore, db_path: Path) -> None:
    """A str that is no text (a lone surrogate) fails in sqlite3 with UnicodeEncodeError, not a
    sqlite3.Error: the engine path raises it to that caller alone, and so must a group."""
    engine_path = open_store(f"sqlite:///{db_path}", fast_paths=False)
    try:
        with pytest.raises(UnicodeEncodeError):
            await engine_path.remember_jti("c1", "\ud800", LATER)
    finally:
        await engine_path.close()
    assert await store.remember_jti("c1", "warm", LATER) is True
    outcomes = await asyncio.gather(
        store.remember_jti("c1", "before", LATER),
        store.remember_jti("c1", "\ud800", LATER),
        store.revoke_token("t1", LATER),
        return_exceptions=True,
    )
    assert outcomes[0] is True
    assert isinstance(outcomes[1], UnicodeEncodeError), outcomes[1]
    assert outcomes[2] is None
    async with store.engine.connect() as conn:
        stored = {row[0] for row in (await conn.execute(select(assertion_jti.c.jti))).all()}
    assert stored == {"warm", "before"}
    assert await store.is_revoked("t1") is True


async def test_a_database_out_of_reach_fails_the_callers_and_leaves_no_orphan_error(tmp_path: Path) -> None:
    """Every waiting caller gets the engine's error, and that is all: the flusher does not also end
    with it ("Task exception was never retrieved", a traceback at ERROR per failed group)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    gone = open_store(f"sqlite:///{tmp_path / 'missing' / 'hot.db'}")
    try:
        outcomes = await asyncio.gather(
            gone.remember_jti("c1", "j1", LATER), gone.revoke_token("t1", LATER), return_exceptions=True
        )
        assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError]
        assert all("unable to open database file" in str(outcome) for outcome in outcomes)
        await gone.close()
        del outcomes
        gc.collect()
        assert reported == []
    finally:
        loop.set_exception_handler(None)


async def test_busy_timeout_counts_from_each_call(store: SqlStore, db_path: Path) -> None:
    """Until `SQLITE_BUSY_TIMEOUT_MS` after the call (the module docstring): a write queued while
    an earlier group waits for the lock gets its own timeout, not a fresh one when its group starts
    (which the earlier group's whole wait delays; each write of a failed group tried alone after
    the other would add one more)."""
    writer = SqliteHotWriter.for_engine(store.engine, busy_timeout_ms=1000)
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        with write_lock(db_path):
            first = asyncio.create_task(writer.remember_jti("c1", "first", LATER))
            await asyncio.sleep(0.1)
            second = asyncio.create_task(writer.remember_jti("c1", "second", LATER))
            await asyncio.sleep(1.5)  # past both calls' timeouts (1.0 and 1.1 s), short of 2 s
        outcomes = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
        assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError], outcomes
        assert await writer.remember_jti("c1", "second", LATER) is True  # it was not written
    finally:
        await writer.close()


async def test_a_caller_cancelled_while_its_group_waits_is_not_written(
    store: SqlStore, db_path: Path
) -> None:
    """As before group commit: a write whose caller gave up while it waited for the lock is dropped."""
    writer = SqliteHotWriter.for_engine(store.engine)
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        with write_lock(db_path):
            kept = asyncio.create_task(writer.remember_jti("c1", "kept", LATER))
            dropped = asyncio.create_task(writer.remember_jti("c1", "dropped", LATER))
            await asyncio.sleep(0.05)  # both in one group, waiting for the lock
            dropped.cancel()
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(kept, 5) is True
        assert dropped.cancelled()
        assert await writer.remember_jti("c1", "dropped", LATER) is True  # it was not written
    finally:
        await writer.close()


async def test_close_waits_for_the_writes_that_come_while_it_waits(store: SqlStore, db_path: Path) -> None:
    """A caller whose write failed while close() waited for the flusher writes again at once: that
    write opens no thread and connection of its own that outlive close()."""
    writer = SqliteHotWriter.for_engine(store.engine, busy_timeout_ms=300)
    assert await writer.remember_jti("c1", "warm", LATER) is True

    async def write_twice() -> list[object]:
        outcomes: list[object] = []
        for attempt in range(2):
            try:
                outcomes.append(await writer.remember_jti("c1", f"j{attempt}", LATER))
            except OperationalError as exc:
                outcomes.append(exc)
        return outcomes

    try:
        with write_lock(db_path):
            caller = asyncio.create_task(write_twice())
            await asyncio.sleep(0.05)
            await asyncio.wait_for(writer.close(), 5)
            assert not [t for t in threading.enumerate() if t.name.startswith("certbound-sqlite")]
        outcomes = await asyncio.wait_for(caller, 5)
        assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError]
        assert not [t for t in threading.enumerate() if t.name.startswith("certbound-sqlite")]
    finally:
        await writer.close()


async def test_a_backlog_is_committed_in_bounded_groups(store: SqlStore, db_path: Path) -> None:
    """Writes queued while another connection held the lock go in groups of at most MAX_GROUP, so
    that one transaction never holds the event loop for the whole backlog."""
    writer = SqliteHotWriter.for_engine(store.engine)
    writer.MAX_GROUP = 100
    try:
        assert await writer.remember_jti("c1", "warm", LATER) is True
        seen = _statements(writer)
        with write_lock(db_path):
            writes = asyncio.gather(*(writer.remember_jti("c1", f"b{i}", LATER) for i in range(250)))
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(writes, 5) == [True] * 250
        commits = [s for s in seen if s.startswith("COMMIT")]  # a BEGIN is also traced when BUSY
        assert len(commits) == 3, commits
    finally:
        await writer.close()
