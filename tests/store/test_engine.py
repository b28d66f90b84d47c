"""Database URLs map to the async drivers; every SQLite connection gets the pragmas."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from certbound.store.engine import async_url
from certbound.store.sql import open_store


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/certbound.db", "sqlite+aiosqlite:///data/certbound.db"),
        ("sqlite:////var/lib/certbound.db", "sqlite+aiosqlite:////var/lib/certbound.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
        ("postgres://u@db.example:6543/cb", "postgresql+asyncpg://u@db.example:6543/cb"),
        ("postgresql+asyncpg://u@h/cb", "postgresql+asyncpg://u@h/cb"),
    ],
)
def test_url_mapping(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "unsupported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("not a url", "not a URL"),
    ],
)
def test_bad_urls(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(given)


def test_password_stays_out_of_errors() -> None:
    with pytest.raises(ValueError, match="unsupported") as caught:
        open_store("oracle://scott:tiger@h/db")
    assert "tiger" not in str(caught.value)


async def test_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    await store.migrate()

    async def pragmas(conn: AsyncConnection) -> tuple[object, ...]:
        names = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        return tuple([await conn.scalar(text(f"PRAGMA {name}")) for name in names])

    try:
        async with store.engine.connect() as a, store.engine.connect() as b:  # two pooled connections
            assert await asyncio.gather(pragmas(a), pragmas(b)) == [("wal", 1, 5000, 1)] * 2
    finally:
        await store.close()
