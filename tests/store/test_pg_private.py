"""The private cluster helper really stops and starts its own server, and only its own."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests import pg_helpers
from tests.pg_private import PrivatePostgres, private_postgres

__all__ = ["private_postgres"]


async def _answer(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return int(await conn.fetchval("SELECT 41 + 1"))
    finally:
        await conn.close()


def answer(url: str) -> int:
    return asyncio.run(_answer(url))


def test_stop_start_restart_on_the_same_port(private_postgres: PrivatePostgres) -> None:
    pg = private_postgres
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert answer(pg.url) == 42
    pg.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")

    pg.stop()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        answer(pg.url)

    pg.start()
    assert answer(pg.url) == 42
    pg.restart(mode="immediate")
    assert pg.execute("SELECT v FROM kept").strip() == "7"


def test_the_shared_server_is_untouched(private_postgres: PrivatePostgres) -> None:
    pg_helpers.require_postgres()
    private_postgres.stop()
    shared = pg_helpers.ADMIN_URL
    assert answer(shared) == 42
    assert private_postgres.port != 5432


def test_close_removes_the_cluster() -> None:
    pg = PrivatePostgres()
    with pg:
        assert answer(pg.url) == 42
        root = pg.root
    assert not root.exists()
    with pytest.raises(ConnectionRefusedError):
        answer(pg.url)
