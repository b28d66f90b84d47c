"""The readers `Store.token_state()` hands out: the deny-list and opaque tokens, on the hot path.

A revoked token must be inactive on every worker and node from the moment revocation returned. No
in-process cache can promise that without hearing from the store (a notification arrives *after* the
revocation returned), so every introspection of an otherwise valid token asks the store. What this
module makes cheap is that question (docs/performance.md, "Fast paths", has the figures):

- `StoreTokenState` asks the store's own methods: any store, and `SqlStore` with its fast paths off.
  Through SQLAlchemy's async engine each read pays a pool checkout, BEGIN, statement compilation,
  ROLLBACK and, on SQLite, a thread hop through aiosqlite;
- on SQLite, `SqliteTokenState` keeps one plain `sqlite3` connection per worker and reads on the
  event loop thread (a WAL reader never waits for the writer, so it does not block). It asks the
  store's shared memory first: when nothing at all was committed since it last found a ``jti`` not
  revoked, or read an opaque token's row (the WAL-index header is unchanged,
  `certbound.store.sqlite_commits`), that answer stands without a query;
- on PostgreSQL, `PostgresTokenState` keeps a few asyncpg connections with prepared statements (the
  round trip remains: latency, not CPU).

Writes (revoking, storing opaque tokens) stay with the `Store`: they must be durable. On SQLite the
store makes the deny-list insert cheap the same way (`certbound.store.sqlite_hot`). The statements
are compiled from `certbound.store.schema`, so they follow the tables.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from certbound.store.availability import STATEMENT_TIMEOUT_S
from certbound.store.interface import OpaqueToken, TokenState
from certbound.store.schema import opaque_tokens, revoked_tokens
from certbound.store.sqlite_commits import CommitMarker

__all__ = [
    "PostgresTokenState",
    "SqliteTokenState",
    "StoreTokenState",
    "TokenState",
    "TokenStateStore",
]

_REVOKED = select(revoked_tokens.c.token_key).where(revoked_tokens.c.token_key == bindparam("key"))
_OPAQUE = select(
    opaque_tokens.c.client_id, opaque_tokens.c.claims, opaque_tokens.c.expires_at, opaque_tokens.c.revoked
).where(opaque_tokens.c.token_sha256 == bindparam("key"))


def _compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect))


class TokenStateStore(Protocol):
    """The part of `certbound.store.interface.Store` that `StoreTokenState` reads."""

    async def is_revoked(self, token_key: str) -> bool: ...

    async def get_opaque_token(self, token_sha256: str) -> OpaqueToken | None: ...


class StoreTokenState:
    """Through the `Store` interface: works with any store, costs what a store call costs."""

    def __init__(self, store: TokenStateStore) -> None:
        self._store = store

    async def is_revoked(self, jti: str) -> bool:
        return await self._store.is_revoked(jti)

    async def opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        return await self._store.get_opaque_token(token_sha256)

    async def close(self) -> None:
        return None


def _opaque(token_sha256: str, client_id: str, claims: Any, expires_at: Any, revoked: Any) -> OpaqueToken:
    if isinstance(claims, str):
        claims = json.loads(claims)
    if isinstance(expires_at, str):  # SQLite keeps UTC as text without an offset (store/types.py)
        expires_at = datetime.fromisoformat(expires_at)
    if isinstance(expires_at, datetime) and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return OpaqueToken(
        token_sha256=token_sha256,
        client_id=str(client_id),
        claims=dict(claims),
        expires_at=expires_at,
        revoked=bool(revoked),
    )


class SqliteTokenState:
    """One synchronous `sqlite3` connection per worker, queried on the event loop thread.

    Each statement runs in its own implicit read transaction (autocommit), so it sees every commit
    made before it started, by any process. `query_only` makes it unable to write, whatever a caller
    does; the short busy timeout bounds the rare wait (WAL recovery after a crash) on the loop.

    A ``jti`` found not revoked, and an opaque token's row found, are remembered together with the
    database's commit marker read just before that query
    (:class:`~certbound.store.sqlite_commits.CommitMarker`): while the marker is unchanged nothing was
    committed since, by any process, so the answer still holds and the query is skipped. The first
    commit anywhere (a revocation, or any other write) forgets them all. A remembered row is shared
    by the callers that ask for it: read-only, as `OpaqueToken` is frozen (its claims by convention).
    """

    BUSY_TIMEOUT_MS = 250
    #: At most this many ``jti``s are remembered as not revoked (then forgotten together).
    MAX_REMEMBERED = 65_536

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._marker: CommitMarker | None = None
        self._revoked_sql = _compiled(_REVOKED, sqlite_dialect.dialect())
        self._opaque_sql = _compiled(_OPAQUE, sqlite_dialect.dialect())
        self._seen_at: bytes | None = None  # the marker the remembered answers were read under
        self._not_revoked: set[str] = set()
        self._opaque_rows: dict[str, OpaqueToken] = {}  # found rows, read under `_seen_at`

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT_MS)}")
                conn.execute("PRAGMA query_only = 1")
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the wal-index
                self._marker = CommitMarker.open(conn, self._path)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _marker_now(self) -> bytes | None:
        """The commit marker now; when it moved since the remembered answers were read, they are
        forgotten (something was committed since, by some process)."""
        marker = self._marker.current() if self._marker is not None else None
        if marker is None or marker != self._seen_at:
            self._not_revoked.clear()
            self._opaque_rows.clear()
            self._seen_at = marker
        return marker

    async def is_revoked(self, jti: str) -> bool:
        conn = self._connection()
        marker = self._marker_now()
        if marker is not None and jti in self._not_revoked:
            return False
        if conn.execute(self._revoked_sql, (jti,)).fetchone() is not None:
            return True
        if marker is not None:
            if len(self._not_revoked) >= self.MAX_REMEMBERED:
                self._not_revoked.clear()
            self._not_revoked.add(jti)
        return False

    async def opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        conn = self._connection()
        marker = self._marker_now()
        if marker is not None:
            found = self._opaque_rows.get(token_sha256)
            if found is not None:
                return found
        row = conn.execute(self._opaque_sql, (token_sha256,)).fetchone()
        if row is None:
            return None
        token = _opaque(token_sha256, *row)
        if marker is not None:
            if len(self._opaque_rows) >= self.MAX_REMEMBERED:
                self._opaque_rows.clear()
            self._opaque_rows[token_sha256] = token
        return token

    async def close(self) -> None:
        self._not_revoked.clear()
        self._opaque_rows.clear()
        self._seen_at = None
        self._marker = None  # its mapping stays: closing it would drop SQLite's locks on -shm
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresTokenState:
    """A few asyncpg connections of its own (opened on first use), each with the two statements
    prepared once, handed out through a queue.

    Not an asyncpg pool: its acquire/release machinery (and the reset round trip on release) cost
    several times the read itself (docs/performance.md). A connection that fails is closed and
    reopened on its next use; the failing read raises (the endpoint answers 503 when the database is
    out of reach, never "active").
    """

    def __init__(self, dsn: str, *, size: int = 4, timeout: float = STATEMENT_TIMEOUT_S) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._slots: list[_PreparedConnection | None] = [None] * size
        self._idle: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(size):
            self._idle.put_nowait(slot)
        dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
        self._revoked_sql = _compiled(_REVOKED, dialect)
        self._opaque_sql = _compiled(_OPAQUE, dialect)

    async def _connect(self) -> _PreparedConnection:
        import asyncpg

        conn = await asyncpg.connect(self._dsn, timeout=self._timeout, command_timeout=self._timeout)
        try:
            return _PreparedConnection(
                conn, await conn.prepare(self._revoked_sql), await conn.prepare(self._opaque_sql)
            )
        except BaseException:
            await conn.close()
            raise

    async def _fetchrow(self, opaque: bool, key: str) -> Any:
        slot = self._idle.get_nowait() if not self._idle.empty() else await self._idle.get()
        try:
            prepared = self._slots[slot]
            if prepared is None:
                prepared = self._slots[slot] = await self._connect()
            statement = prepared.opaque if opaque else prepared.revoked
            try:
                return await statement.fetchrow(key, timeout=self._timeout)
            except Exception:
                self._slots[slot] = None
                await prepared.close()
                raise
        finally:
            self._idle.put_nowait(slot)

    async def is_revoked(self, jti: str) -> bool:
        return await self._fetchrow(False, jti) is not None

    async def opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        row = await self._fetchrow(True, token_sha256)
        return None if row is None else _opaque(token_sha256, *row)

    async def close(self) -> None:
        for slot, prepared in enumerate(self._slots):
            self._slots[slot] = None
            if prepared is not None:
                await prepared.close()


@dataclass(slots=True)
class _PreparedConnection:
    conn: Any
    revoked: Any
    opaque: Any

    async def close(self) -> None:
        try:
            await self.conn.close(timeout=5)
        except Exception:  # already broken: nothing more to release
            self.conn.terminate()
