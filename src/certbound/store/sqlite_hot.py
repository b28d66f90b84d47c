"""The two durable hot-path writes on SQLite without SQLAlchemy's async machinery.

`remember_jti` (the assertion replay cache) and `revoke_token` (the deny-list) are one INSERT each,
on the request path of every ``private_key_jwt``/``client_secret_jwt`` authentication and every
revocation. Through the async engine each pays a pool checkout, BEGIN IMMEDIATE, result wrapping and
thread hops through aiosqlite, many times the INSERT itself (docs/performance.md, "Fast paths"). Here:

- One plain `sqlite3` connection per store (i.e. per worker), used on the event loop thread in
  autocommit mode: the INSERT is its own transaction, committed -- visible to every process sharing
  the file -- when `execute` returns. An autocommit INSERT takes the write lock when it starts (it
  is a write transaction from its first instruction), so it is as atomic as BEGIN IMMEDIATE + INSERT
  + COMMIT, and ``ON CONFLICT DO NOTHING`` lets the database pick the one winner of a race.
- Writes are committed in groups: a write is queued and the store's flusher task, started in the
  next loop iteration, commits every write queued meanwhile (the writes of the requests the loop ran
  in between) in one ``BEGIN IMMEDIATE`` .. ``COMMIT``, then answers each caller with its own
  rowcount; a lone write is one autocommit INSERT, as above. Each caller still returns only after
  its write is committed, and ``ON CONFLICT DO NOTHING`` still picks one winner within a group. The
  shared pages (the table's last leaf, its indexes) go to the WAL once per group instead of once per
  write, which is most of a write's cost under load (docs/performance.md). A statement that fails
  undoes its group's transaction, and each write of the group is then tried alone, so that only
  its own caller gets the error.
- The statements and the bind processing come from `certbound.store.schema`, compiled once with the
  engine's own dialect, so the SQL and the stored values (UTC datetimes as fixed-width text, which
  `purge_expired` compares as strings) are exactly what the SQLAlchemy path writes.
- The same PRAGMAs as the engine's connections (`certbound.store.engine.SQLITE_PRAGMAS`: WAL,
  synchronous=NORMAL, foreign keys), so durability is unchanged. Two differ, so that the loop never
  waits for anything but its own WAL append:

  * ``busy_timeout = 0``. SQLite's busy handler sleeps in the calling thread: on the loop it would
    stall every request of the worker while another process holds the write lock (an
    administrative write, a purge, another worker's insert). Instead SQLITE_BUSY comes back at once,
    nothing written, and the write is retried after an ``asyncio.sleep`` that backs off like
    SQLite's handler (`BUSY_BACKOFF`), until `SQLITE_BUSY_TIMEOUT_MS` after the call; then the
    caller gets the `sqlalchemy.exc.OperationalError` ("database is locked") the engine raises after
    its busy timeout. Not a thread: under load the loop holds the GIL, and a thread gets it back
    only every switch interval (`sys.getswitchinterval()`), several times per statement, so a write
    handed to a thread under a busy loop waits far longer than it runs.
  * ``wal_autocheckpoint = 0``. A checkpoint copies up to the autocheckpoint threshold (1,000 pages
    by default) into the database file and fsyncs twice, and SQLite runs it in the connection whose
    commit crossed the threshold. This one never does: every `CHECKPOINT_EVERY` writes a PASSIVE
    checkpoint runs on the store's own thread while writes go on; when it is over, a second one
    copies what was written meanwhile, and this store's writes wait for that one (asynchronously) --
    what SQLite's autocheckpoint does to the connection that runs it, minus the stalled loop. The
    pause matters: a checkpoint racing a steady stream of writes never copies the last frame, so the
    WAL never starts over and grows without bound. Left on the loop: the first commit after the WAL
    starts over syncs its header, once per cycle. The pause holds back this process's writes only:
    with several workers writing at once the others keep appending, and the WAL grows larger than
    under SQLite's own autocheckpoint; bounded in the runs measured (docs/performance.md), not by
    design.

The same connection also answers the one read that every worker repeats all the time: the store
generation, polled twice a second by each worker's `GenerationWatcher` (through the engine, a
transaction and a thread hop each time). A WAL reader does not wait for writers; the rare
SQLITE_BUSY (WAL recovery) sends the caller to the engine instead.

Every `sqlite3.Error` is re-raised as the `sqlalchemy.exc.DBAPIError` subclass the engine would
raise for it (parameters hidden), so callers see the same exceptions on both paths and fail closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from certbound.store.engine import SQLITE_BUSY_TIMEOUT_MS, SQLITE_PRAGMAS
from certbound.store.schema import assertion_jti, revoked_tokens, store_generation

__all__ = ["SqliteHotWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SQLITE_BUSY = 5  # primary result code; the extended ones (BUSY_RECOVERY, ...) share the low byte


@dataclass(frozen=True, slots=True)
class _Statement:
    """SQL text compiled once, and how to turn keyword values into its positional parameters."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def insert_ignore(cls, table: Table, dialect: Dialect) -> _Statement:
        """INSERT of every column of `table`, doing nothing when the primary key is already there."""
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(table.primary_key))
        compiled = statement.compile(dialect=dialect, column_keys=[c.key for c in table.columns])
        names = tuple(compiled.positiontup or ())
        processors = tuple(compiled.binds[name].type.bind_processor(dialect) for name in names)
        return cls(str(compiled), names, processors)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )


@dataclass(frozen=True, slots=True)
class _Pending:
    """A write waiting for the next group commit, and where its rowcount goes."""

    sql: str
    parameters: tuple[Any, ...]
    done: asyncio.Future[int]
    deadline: float  # time.monotonic() when its caller stops waiting for another connection's lock


@dataclass(slots=True)
class _Session:
    """What one open..close cycle owns: a thread, the loop's connection and the thread's.

    `loop_conn` is used only on the event loop thread (it is opened on the thread, so that opening
    never blocks the loop); `thread_conn` only on the thread, for checkpoints.
    """

    executor: ThreadPoolExecutor
    loop_conn: sqlite3.Connection | None = None
    thread_conn: sqlite3.Connection | None = None
    writes: int = 0  # since the last checkpoint started
    bulk: Future[None] | None = None  # the running bulk checkpoint: writes go on meanwhile
    tail: Future[None] | None = None  # the running tail checkpoint: writes wait for it


class SqliteHotWriter:
    """`remember_jti` and `revoke_token` for a `SqlStore` on SQLite (see the module docstring).

    Reusable after `close()`, like the engine: the next write opens a new thread and connections.
    """

    #: Writes between two checkpoints. One insert dirties about three pages (the table, its key,
    #: the expiry index): ~750 WAL pages, near SQLite's default of 1000.
    CHECKPOINT_EVERY = 250
    #: Writes per transaction at most: one group holds the loop for ~10 µs per write, so a backlog
    #: (after another connection held the lock) is committed in several, with requests run between.
    MAX_GROUP = 256
    #: Waits between two tries while another connection holds the write lock (seconds).
    BUSY_BACKOFF = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025)

    def __init__(
        self,
        connect_args: tuple[Sequence[Any], Mapping[str, Any]],
        dialect: Dialect,
        *,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ) -> None:
        args, kwargs = connect_args
        self._connect_args = tuple(args)
        self._connect_kwargs = {**kwargs, "isolation_level": None, "check_same_thread": False}
        self._dialect = dialect
        self._busy_timeout = busy_timeout_ms / 1000
        self._jti = _Statement.insert_ignore(assertion_jti, dialect)
        self._revoked = _Statement.insert_ignore(revoked_tokens, dialect)
        generation = select(store_generation.c.value).where(store_generation.c.id == 1)
        self._generation_sql = str(
            generation.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
        self._session: _Session | None = None
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine, **options: Any) -> SqliteHotWriter:
        """Connect exactly as `engine` does (same file, same URL options)."""
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        return cls((args, kwargs), engine.dialect, **options)

    async def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """True when this call inserted (client_id, jti): the first one, over every process."""
        values = {"client_id": client_id, "jti": jti, "expires_at": expires_at}
        return await self._write(self._jti, values) == 1

    async def revoke_token(self, token_key: str, expires_at: datetime) -> None:
        """Deny-list `token_key`; committed when this returns (idempotent)."""
        await self._write(self._revoked, {"token_key": token_key, "expires_at": expires_at})

    async def generation(self) -> int | None:
        """The store generation; None when SQLite is busy right now or the row is missing (the
        caller then asks the engine, which waits, or raises the missing row's error)."""
        session = self._session
        conn = None if session is None else session.loop_conn
        if session is None or conn is None:
            session, conn = await self._open()
        try:
            row = conn.execute(self._generation_sql).fetchone()
        except sqlite3.Error as exc:
            if _is_busy(exc):
                return None
            raise _wrap(exc, self._generation_sql, (), self._dialect) from exc
        return None if row is None else int(row[0])

    async def close(self) -> None:
        """Let the queued writes and a running checkpoint finish, then close both connections and
        end the thread."""
        # a loop: a caller answered by the last group may write again before this resumes
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait((self._flusher,))
        session, self._session = self._session, None
        if session is None:
            return
        closed = session.executor.submit(_close_connections, session)
        session.executor.shutdown(wait=False)  # queued work still runs, then the thread ends
        await asyncio.wrap_future(closed)
        session.executor.shutdown(wait=True)  # the thread is past its last job: joins at once

    # -- internals -------------------------------------------------------------------------------

    async def _write(self, statement: _Statement, values: Mapping[str, Any]) -> int:
        """Queue `statement` for the next group commit and wait for its rowcount (see the module
        docstring); the values are bound here, so that a value the column refuses fails its caller."""
        loop = asyncio.get_running_loop()
        parameters = statement.parameters(values)
        deadline = time.monotonic() + self._busy_timeout
        pending = _Pending(statement.sql, parameters, loop.create_future(), deadline)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            # started in the next loop iteration: the writes of requests running in this one join it.
            # done() too: a flusher cancelled before its first step (its loop stopped) never ran its
            # `finally`, and would otherwise keep every later write waiting
            self._flusher = loop.create_task(self._flush())
        return await pending.done

    async def _flush(self) -> None:
        """Commit what is queued, batch after batch, until nothing is; never leaves a caller waiting."""
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.MAX_GROUP], self._queue[self.MAX_GROUP :]
                await self._commit(batch)
                if self._queue:  # a backlog (the lock was held elsewhere): let requests run between groups
                    await asyncio.sleep(0)
        except BaseException as exc:  # cancelled (shutdown), the database out of reach, or a bug
            for pending in (*batch, *self._queue):  # every waiting caller gets it
                _fail(pending, exc)
            self._queue = []
            if not isinstance(exc, Exception):
                raise  # cancelled: the task ends so; an error is the callers' (nobody awaits this task)
        finally:
            self._flusher = None

    async def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for every write of `batch` whose caller still waits; a statement that
        fails undoes the transaction, and then each write is tried alone, so that each caller gets
        its own answer (nothing half-written: a transaction commits whole or not at all)."""
        live = batch
        tries = 0
        while True:
            live = [pending for pending in live if not pending.done.done()]  # cancelled, timed out
            if not live:
                return
            session = self._session
            conn = None if session is None else session.loop_conn
            if session is None or conn is None:
                session, conn = await self._open()
            pause = self._checkpoint_pause(session)
            if pause is not None:  # asyncio.wait: a cancelled waiter must not cancel it for others
                await asyncio.wait((asyncio.wrap_future(pause),))
                continue
            try:
                rowcounts = _execute(conn, live)
            except Exception as exc:  # not only sqlite3.Error: binding a str that is no text raises
                if not _is_busy(exc):  # UnicodeEncodeError, and that is its caller's alone
                    if len(live) > 1:
                        for pending in live:
                            await self._commit([pending])
                    else:
                        _fail(live[0], self._error(exc, live[0]))
                    return
                now = time.monotonic()
                for pending in live:  # each caller waits until its own deadline, as on the engine
                    if now >= pending.deadline:
                        _fail(pending, self._error(exc, pending))
                waiting = [pending.deadline for pending in live if not pending.done.done()]
                if waiting:
                    delay = self.BUSY_BACKOFF[min(tries, len(self.BUSY_BACKOFF) - 1)]
                    tries += 1
                    await asyncio.sleep(min(delay, max(0.0, min(waiting) - now)))
                continue
            for pending, rowcount in zip(live, rowcounts, strict=True):
                if not pending.done.done():
                    pending.done.set_result(rowcount)
            session.writes += len(live)
            if session.writes >= self.CHECKPOINT_EVERY and session.bulk is None and session.tail is None:
                self._start_bulk(session)
            return

    def _error(self, exc: Exception, pending: _Pending) -> Exception:
        """What the engine raises for `exc`: a sqlite3.Error wrapped, anything else as it is."""
        if not isinstance(exc, sqlite3.Error):
            return exc
        error = _wrap(exc, pending.sql, pending.parameters, self._dialect)
        error.__cause__ = exc
        return error

    async def _open(self) -> tuple[_Session, sqlite3.Connection]:
        session = self._session
        if session is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="certbound-sqlite")
            session = self._session = _Session(executor)
        return session, await _in_thread(session, self._open_loop_connection, session)

    def _open_loop_connection(self, session: _Session) -> sqlite3.Connection:
        """On the thread (serial, so two racing first writes open one connection)."""
        if session.loop_conn is None:
            try:
                session.loop_conn = self._connect(busy_timeout_ms=0)
            except sqlite3.Error as exc:
                raise _wrap(exc, "-- connect", (), self._dialect) from exc
        return session.loop_conn

    def _connect(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(*self._connect_args, **self._connect_kwargs)
        try:
            for pragma in SQLITE_PRAGMAS:  # busy_timeout first: journal_mode may wait for a lock
                conn.execute(f"PRAGMA {pragma}")
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    def _checkpoint_pause(self, session: _Session) -> Future[None] | None:
        """The tail checkpoint that writes must wait for, if one is running; starts it once the
        bulk one is over (checked here rather than in a callback: a caller whose awaited writes
        never suspend would never let the loop run one)."""
        if session.bulk is not None and session.bulk.done():
            session.bulk = None
            self._start_tail(session)
        if session.tail is not None and session.tail.done():
            session.tail = None
        return session.tail

    def _start_bulk(self, session: _Session) -> None:
        """On the loop: checkpoint on the thread while writes go on."""
        with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing left to checkpoint for
            session.bulk = session.executor.submit(self._checkpoint, session)
            session.writes = 0

    def _start_tail(self, session: _Session) -> None:
        """On the loop: checkpoint what was written during the bulk one while this store's writes
        wait, so that it copies the last frame and the next write can start the WAL over."""
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            session.tail = session.executor.submit(self._checkpoint, session)

    def _checkpoint(self, session: _Session) -> None:
        """On the thread. A failure is only logged: the next checkpoint tries again (and until one
        succeeds, the WAL just grows, as it would with SQLite's own autocheckpoint)."""
        try:
            conn = session.thread_conn
            if conn is None:
                conn = session.thread_conn = self._connect(busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("sqlite WAL checkpoint failed: %s", exc)


def _execute(conn: sqlite3.Connection, batch: Sequence[_Pending]) -> list[int]:
    """The rowcount of each write of `batch`, all committed; one write is its own autocommit
    statement, several share one ``BEGIN IMMEDIATE`` .. ``COMMIT`` (rolled back if any fails)."""
    if len(batch) == 1:
        return [conn.execute(batch[0].sql, batch[0].parameters).rowcount]
    conn.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY here: nothing begun, the caller tries again
    try:
        rowcounts = [conn.execute(pending.sql, pending.parameters).rowcount for pending in batch]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return rowcounts


def _fail(pending: _Pending, exc: BaseException) -> None:
    if pending.done.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        pending.done.cancel()
    else:
        pending.done.set_exception(exc)


async def _in_thread(session: _Session, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.wrap_future(session.executor.submit(fn, *args))


def _close_connections(session: _Session) -> None:
    for conn in (session.loop_conn, session.thread_conn):
        if conn is not None:
            conn.close()
    session.loop_conn = session.thread_conn = None


def _is_busy(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_BUSY


def _wrap(exc: sqlite3.Error, statement: str, parameters: tuple[Any, ...], dialect: Dialect) -> Exception:
    """The `DBAPIError` subclass SQLAlchemy would raise for `exc` (OperationalError, IntegrityError...)."""
    return DBAPIError.instance(
        statement, parameters, exc, sqlite3.Error, hide_parameters=True, dialect=dialect
    )
