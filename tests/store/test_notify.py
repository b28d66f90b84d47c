"""LISTEN/NOTIFY on PostgreSQL: a watcher whose poll would take an hour still sees, through the
notifications of migration 0005, every change committed by another store; the listener reconnects by
itself after the database restarts; while it cannot listen, the poll still works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from certbound.store.generation import GenerationWatcher
from certbound.store.notify import CHANNEL, GenerationListener
from certbound.store.records import Client, SigningKey
from certbound.store.sql import SqlStore, open_store
from tests.pg_private import PrivatePostgres, private_postgres  # noqa: F401 (fixture)

pytestmark = pytest.mark.postgres

HOUR = 3600.0
#: How long a change may take to arrive before the test gives up (a liveness bound, not a timing claim).
PATIENCE_S = 15.0


async def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = asyncio.get_running_loop().time() + PATIENCE_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


@pytest.fixture
async def two_stores(pg_url: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    here, there = open_store(pg_url), open_store(pg_url)
    await here.migrate()
    yield here, there
    await here.close()
    await there.close()


def _key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", "next", {"kty": "EC", "kid": kid}, "sealed", created_at=datetime.now(UTC))


async def _changes(there: SqlStore) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: there.create_client(Client("c1", {})),
        lambda: there.replace_client(Client("c1", {"client_name": "renamed"})),
        lambda: there.add_signing_key(_key("k1")),
        lambda: there.set_signing_key_state("k1", "active", datetime.now(UTC)),
        lambda: there.delete_client("c1"),
    ]


async def test_every_change_elsewhere_is_heard_without_polling(two_stores: tuple[SqlStore, SqlStore]) -> None:
    here, there = two_stores
    listener = here.generation_listener()
    assert listener is not None
    watcher = GenerationWatcher(here, interval=HOUR, listener=listener)
    await watcher.start()
    try:
        assert await _eventually(lambda: listener.connected)
        for change in await _changes(there):
            before = watcher.value
            await change()
            assert await _eventually(lambda b=before: watcher.value != b), "no notification arrived"
            assert watcher.value == await there.generation()
    finally:
        await watcher.stop()


async def test_a_change_that_changes_nothing_is_not_announced(two_stores: tuple[SqlStore, SqlStore]) -> None:
    here, there = two_stores
    heard: list[str] = []
    conn = await asyncpg.connect(str(here.engine.url.set(drivername="postgresql").render_as_string(False)))
    try:
        await conn.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        await there.create_client(Client("c1", {}))
        assert await there.delete_client("nobody") is False  # rolled back: nothing to say
        await there.delete_client("c1")
        assert await _eventually(lambda: len(heard) >= 2)
        await asyncio.sleep(0.2)  # a third notification, if any, would have come by now
        assert heard == ["1", "2"]
    finally:
        await conn.close()


async def test_without_notifications_the_poll_still_sees_changes(pg_url: str) -> None:
    here, there = open_store(pg_url), open_store(pg_url)
    await here.migrate()
    dead = GenerationListener("postgresql://postgres@127.0.0.1:1/nothing", retry_s=0.05)
    watcher = GenerationWatcher(here, interval=0.05, listener=dead)
    await watcher.start()
    try:
        await there.create_client(Client("c1", {}))
        assert await _eventually(lambda: watcher.value == 1)
        assert dead.connected is False
    finally:
        await watcher.stop()
        await here.close()
        await there.close()


async def test_the_listener_comes_back_after_a_database_restart(private_postgres: PrivatePostgres) -> None:  # noqa: F811
    here, there = open_store(private_postgres.url), open_store(private_postgres.url)
    await here.migrate()
    listener = here.generation_listener()
    assert listener is not None
    watcher = GenerationWatcher(here, interval=HOUR, listener=listener)
    await watcher.start()
    try:
        assert await _eventually(lambda: listener.connected)
        await asyncio.to_thread(private_postgres.restart)
        assert await _eventually(lambda: listener.connected), "the listener did not reconnect"
        for value, change in enumerate(await _changes(there), start=1):
            await change()
            assert await _eventually(lambda v=value: watcher.value == v)
    finally:
        await watcher.stop()
        await here.close()
        await there.close()


async def test_a_change_made_while_the_listener_reconnects_is_not_lost(pg_url: str) -> None:
    # the listener's connection is cut (its backend terminated: a proxy or failover does this) and a
    # change commits before it listens again: nobody is notified of it, yet with an hour-long poll the
    # watcher must see it, from the read the listener makes once it is back
    here, there = open_store(pg_url), open_store(pg_url)
    await here.migrate()
    listener = here.generation_listener()
    assert listener is not None
    watcher = GenerationWatcher(here, interval=HOUR, listener=listener)
    await watcher.start()
    admin = await asyncpg.connect(pg_url)
    try:
        assert await _eventually(lambda: listener.connected)
        start = watcher.value
        assert start is not None
        # its last statement is the LISTEN until its first keepalive query, 5 s after it connected
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert pids, "the listener's backend was not found"
        for row in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])
        await there.create_client(Client("while-away", {}))  # the listener is reconnecting (0.2 s)
        assert await _eventually(lambda: watcher.value is not None and watcher.value > start)
        assert await _eventually(lambda: listener.connected), "the listener did not come back"
    finally:
        await admin.close()
        await watcher.stop()
        await here.close()
        await there.close()
