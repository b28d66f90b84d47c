"""Database URLs and async engines: the one place that knows the two dialects' connection quirks.

SQLite: every connection gets WAL (readers never block the writer), a busy timeout (writers queue
instead of failing), foreign keys (off by default in SQLite, and the cascades depend on them) and
synchronous=NORMAL (durable with WAL, much cheaper than FULL). The sqlite3 driver's own transaction
handling is switched off and SQLAlchemy emits BEGIN itself, so that every transaction really is one
(the driver would not BEGIN before a SELECT or DDL) and writers can take the write lock up front with
BEGIN IMMEDIATE, which is what makes the busy timeout apply instead of a "database is locked" error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certbound.store.availability import CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_S

#: Execution option that marks a transaction as a writer (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "certbound_write"

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",  # first: the next ones may have to wait for a lock
    "journal_mode = WAL",
    "foreign_keys = ON",
    "synchronous = NORMAL",
)

_POSTGRES_NAMES = {"postgres", "postgresql", "postgresql+asyncpg"}
_SQLITE_NAMES = {"sqlite", "sqlite+aiosqlite"}


def async_url(database_url: str) -> URL:
    """Map a user-facing URL to the async driver's URL.

    Accepts ``sqlite:///path.db`` (relative to the working directory; four slashes for an absolute
    path), ``postgresql://user@host:port/db``, ``postgres://...`` and ``postgresql+asyncpg://...``.
    """
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError; keep the URL (maybe a password) out
        raise ValueError("database URL is not a URL; expected sqlite:///path or postgresql://...") from exc
    name = url.drivername
    if name in _SQLITE_NAMES:
        if not url.database or url.database == ":memory:" or "mode=memory" in str(url.query):
            raise ValueError(
                "an in-memory SQLite database is private to one connection; give a file: sqlite:///path.db"
            )
        return url.set(drivername="sqlite+aiosqlite")
    if name in _POSTGRES_NAMES:
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported database URL scheme {name!r}; use sqlite:///path.db or postgresql://user@host:port/db"
    )


def create_engine(database_url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine for `database_url` with the per-dialect connection setup installed.

    PostgreSQL connections get a connect timeout and a per-statement timeout, and the pool a checkout
    timeout (`certbound.store.availability`): during an outage a request waits that long at most,
    then is answered 503, instead of hanging on the driver's defaults (60 s, or forever).
    """
    url = async_url(database_url)
    if url.get_backend_name() == "postgresql":
        connect_args = {"timeout": CONNECT_TIMEOUT_S, "command_timeout": STATEMENT_TIMEOUT_S}
        connect_args.update(engine_options.pop("connect_args", {}))
        engine_options = {"pool_timeout": STATEMENT_TIMEOUT_S, **engine_options, "connect_args": connect_args}
    engine = create_async_engine(url, **engine_options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions announce themselves as writes."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
