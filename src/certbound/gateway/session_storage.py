"""Where the gateway keeps browser sessions: the store ``serve`` uses (SQLite in ``data_dir`` or
PostgreSQL, through :class:`certbound.sessions.SqlSessionStore`), or Redis for routes that say
``session_storage = "redis"``, and the key that seals cookies and session data.

The key is the ``[store] session_secret_file`` (which must exist), or ``data_dir/session.key`` made at
the first start: a restarted gateway opens the cookies and sessions of the one before it.

The stores' modules are imported only where a route needs them (SQLAlchemy, alembic and asyncpg for
the store, redis for Redis): a gateway without login sessions never loads them (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from certbound.gateway.config import GatewayConfigError, GatewaySettings, StoreSettings
from certbound.sealing import Sealer, load_kek, load_or_create_kek
from certbound.sessions import SessionStore

if TYPE_CHECKING:
    from certbound.sessions.sql import SqlSessionStore
    from certbound.store.sql import SqlStore

__all__ = ["SessionBackends", "migrate_session_store", "open_session_backends", "session_sealer"]

log = logging.getLogger("certbound.gateway")
#: Seconds between purges of expired sessions from the store.
PURGE_EVERY = 300.0


def session_sealer(store: StoreSettings) -> Sealer:
    """The sealer of the gateway's cookies and session data (see the module docstring)."""
    try:
        if store.session_secret_file is not None:
            return Sealer(load_kek(store.session_secret_file))
        store.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Sealer(load_or_create_kek(store.data_dir / "session.key"))
    except (OSError, ValueError) as exc:
        raise GatewayConfigError(f"store.session_secret_file: {exc}") from None


async def _purge_forever(store: SqlSessionStore) -> None:
    """Delete sessions and pending logins no longer usable, every PURGE_EVERY seconds (Redis drops
    them itself): browsers that never finish a login leave nothing behind for long."""
    while True:
        await asyncio.sleep(PURGE_EVERY)
        try:
            await store.purge_expired()
        except Exception as exc:  # the database is away for a while: try again next time
            log.warning("gateway: purging expired sessions failed: %s", exc)


def _uses_store(settings: GatewaySettings) -> bool:
    return any(r.sessions_used() and r.session_storage == "store" for r in settings.routes)


async def migrate_session_store(settings: GatewaySettings) -> None:
    """Create or upgrade the sessions' tables once, in the parent, before workers open the store."""
    if not _uses_store(settings):
        return
    from certbound.store.sql import open_store

    if settings.store.database_url is None:
        settings.store.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_store(settings.store.effective_database_url())
    try:
        await store.migrate()
    finally:
        await store.close()


@dataclass
class SessionBackends:
    """The session stores routes use, by ``session_storage`` (``redis`` by URL), and what to close."""

    sealer: Sealer | None = None
    store: SessionStore | None = None
    redis: dict[str, SessionStore] = field(default_factory=dict)
    _sql: SqlStore | None = None

    def for_route(self, storage: str, redis_url: str | None) -> SessionStore:
        if storage == "redis":
            assert redis_url is not None
            return self.redis[redis_url]
        assert self.store is not None
        return self.store


@contextlib.asynccontextmanager
async def open_session_backends(settings: GatewaySettings) -> AsyncIterator[SessionBackends]:
    """The stores of every route with sessions (none opened when no route has any)."""
    backends = SessionBackends()
    if not any(r.sessions_used() for r in settings.routes):
        yield backends
        return
    backends.sealer = sealer = session_sealer(settings.store)
    async with contextlib.AsyncExitStack() as stack:
        if _uses_store(settings):
            from certbound.sessions.sql import SqlSessionStore
            from certbound.store.sql import open_store

            sql = open_store(settings.store.effective_database_url())
            stack.push_async_callback(sql.close)
            backends.store = store = SqlSessionStore(sql.engine, sealer)
            purging = asyncio.create_task(_purge_forever(store))
            stack.callback(purging.cancel)
        for route in settings.routes:
            url = route.redis_url
            if (
                route.sessions_used()
                and route.session_storage == "redis"
                and url
                and url not in backends.redis
            ):
                from certbound.sessions.redis_store import RedisSessionStore

                redis = RedisSessionStore.from_url(url, sealer)
                stack.push_async_callback(redis.aclose)
                backends.redis[url] = redis
        yield backends
