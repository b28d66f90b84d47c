"""Is this exception the store being out of reach (a database outage), rather than a bug?

During a PostgreSQL restart or network cut, every driver layer raises something different: asyncpg's
connection and operator-intervention errors, a refused or reset socket (`OSError`), a timeout,
SQLAlchemy's wrappers (`OperationalError`, `InterfaceError`, a pool timeout, an invalidated
connection), SQLite's "database is locked". The endpoints answer all of them the same way (503
``temporarily_unavailable`` with ``Retry-After``) and a bug with a 500; this module is the one place
that knows the drivers' exception types, so that nothing outside ``store/`` has to.

The timeouts that bound an outage's wait: `CONNECT_TIMEOUT_S` for a new connection,
`STATEMENT_TIMEOUT_S` for one statement (PostgreSQL), both well below any client's request timeout.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import asyncpg
from sqlalchemy import exc as sa_exc

__all__ = [
    "CONNECT_TIMEOUT_S",
    "RETRY_AFTER_S",
    "STATEMENT_TIMEOUT_S",
    "STORE_ERRORS",
    "describe",
    "is_unavailable",
]

#: How long opening one PostgreSQL connection may take before the request is answered 503.
CONNECT_TIMEOUT_S: Final = 5.0
#: How long one PostgreSQL statement (or a pool checkout) may take.
STATEMENT_TIMEOUT_S: Final = 5.0
#: What a 503 tells clients to wait before retrying (seconds; a PostgreSQL restart takes about this).
RETRY_AFTER_S: Final = 2

#: The exception types an outage shows up as, at the top or in the cause chain (for exception
#: handlers that dispatch by type); `is_unavailable` decides.
STORE_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError,  # includes TimeoutError and ConnectionError
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
    sqlite3.OperationalError,
)

_DIRECT: Final[tuple[type[BaseException], ...]] = (
    OSError,
    sa_exc.TimeoutError,  # the pool: no connection free in time
    asyncpg.PostgresConnectionError,  # could not connect, connection lost
    asyncpg.InterfaceError,  # the connection is closed (only that one: see _CLOSED)
    asyncpg.exceptions.OperatorInterventionError,  # 57P01 admin shutdown, 57P02 crash, 57P03 starting
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    # the protocol caught mid-statement by the server going away (seen under load at a fast stop)
    asyncpg.exceptions.InternalClientError,
)
#: Of those types, what is a bug or bad input rather than an outage: a file that is not there or not
#: readable, a value asyncpg cannot encode, a driver used wrongly (two operations at once on one
#: connection, a feature missing). Answered 503 these would hide the bug and make clients retry for ever.
_NOT_OUTAGE: Final[tuple[type[BaseException], ...]] = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    asyncpg.exceptions._base.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
    asyncpg.exceptions.OutdatedSchemaCacheError,
)
_SQLITE_BUSY: Final = ("database is locked", "database is busy", "disk i/o error", "unable to open database")


def _busy_sqlite(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and str(exc).lower().startswith(_SQLITE_BUSY)


def _outage(exc: BaseException) -> bool:
    if _busy_sqlite(exc):
        return True
    if not isinstance(exc, _DIRECT) or isinstance(exc, _NOT_OUTAGE):
        return False
    if type(exc) is asyncpg.InterfaceError:  # also "another operation is in progress" and other misuse
        return "closed" in str(exc)
    return True


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc`, or an exception that caused it, says the database could not be reached or did
    not answer in time (not that a statement was wrong). The chain is followed through ``raise ...
    from`` (``__cause__``), and through an implicit ``__context__`` only from the drivers' own types:
    a bug (a KeyError, say) raised while handling an outage is still a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        if _outage(current):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return True
            if current.orig is not None and _outage(current.orig):
                return True
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(current, STORE_ERRORS) and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return False


def describe(exc: BaseException) -> str:
    """The exception's type and first line, without the statement or its parameters (for the log)."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        exc = exc.orig
    first = str(exc).strip().partition("\n")[0][:160]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
